"""Schemathesis over the WHOLE OpenAPI document, with every check: the document tells the truth.

The app runs on a real uvicorn on loopback, seeded with the contract's examples, and every
generated request carries an API key holding every scope (clinic, FHIR, audit), so requests
reach the parsers and the store, not just the auth check. Every built-in check runs:
no 5xx, status codes, content types, headers and bodies as declared, invalid data refused
(4xx), valid data accepted, auth not ignored, unsupported methods 405. Bounded (a fixed
number of examples per operation, no shrinking) to stay near a minute on two cores.

Two expectations are widened, and only for the clinic POSTs: a body valid by the JSON
Schema may still break the contract's rules across fields (a reading outside the infusion,
a provider never listed), which JSON Schema cannot state, and the app answers 422 naming
the field, as the document declares; and a generated invalid body may be refused for its
size first (413, declared too). Beside the generated cases, known-good requests (a read
of a stored resource, its version, history, `$everything`, a patient, a submission) are
checked too, since random ids only find 404s.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.openapi import from_dict

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.errors import StoreUnavailable
from tests.unit.adapter.api.conftest import bearer, example_bytes, serve, settings_for
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES

MAX_EXAMPLES = 25
EVERY_SCOPE = ["clinic/*.*", "system/*.rs", "admin/AuditEvent.rs", "system/Subscription.*"]
KEY = "schemathesis-key-of-every-scope-0123456789"
CLINIC_POSTS = r"^/clinic/(encounters|intake-screenings|infusions|vitals|medication-reviews)$"
CONFIG = SchemathesisConfig.from_dict(
    {
        # Schemathesis sends the key itself, so it knows which header is the credential.
        "auth": {"openapi": {"bearer": {"bearer": KEY}}},
        "operations": [
            {
                "include-path-regex": CLINIC_POSTS,
                "include-method": "POST",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
                    },
                    # A generated body can outgrow ADAPTER_MAX_BODY_BYTES: refused with 413.
                    "negative_data_rejection": {
                        "expected-statuses": [
                            *("400", "401", "403", "404", "409", "413", "415", "422", "429")
                        ]
                    },
                },
            },
            {
                # A schema-valid Subscription may still name an endpoint we refuse (422),
                # or, by PUT, an id this tenant does not hold (404).
                "include-path-regex": r"^/fhir/Subscription(/\{logical_id\})?$",
                "include-method": ["POST", "PUT"],
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "422"]
                    },
                },
            },
        ],
    }
)


def _document() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://", ehr_base_url=""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI's warnings (duplicate operation ids) fail it
        document: dict[str, Any] = app.openapi()
    return document


SCHEMA = from_dict(_document(), config=CONFIG)


def _operations() -> list[Any]:
    operations = []
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the schema cannot describe
        operations.append(result.ok())
    return operations


OPERATIONS = _operations()


SUBMISSION_IDS: list[str] = []  # the receipts' ids, filled by the base_url fixture


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    keys = folder / "every-scope-keys.json"
    keys.write_text(json.dumps([{"key": KEY, "tenant": "clinic-s", "scopes": EVERY_SCOPE}]))
    app = create_app(settings_for(folder, run_worker=False, api_keys_file=str(keys)))
    for port in serve(app):
        url = f"http://127.0.0.1:{port}"
        for name in EXAMPLE_NAMES:
            sent = httpx2.post(
                f"{url}/clinic/encounters",
                content=example_bytes(name),
                headers={"Content-Type": "application/json"} | bearer(KEY),
                timeout=60,
            )
            assert sent.status_code == 201, sent.text
            SUBMISSION_IDS.append(sent.json()["submission_id"])
        yield url


def test_document__every_operation_described_and_secured_as_it_is() -> None:
    document = _document()
    operations = {
        (method, path): op for path, ops in document["paths"].items() for method, op in ops.items()
    }
    assert len(operations) == 31
    open_ones = {("get", "/health"), ("get", "/ready"), ("get", "/fhir/metadata")}
    open_ones |= {("get", "/fhir/SearchParameter"), ("get", "/fhir/SearchParameter/{logical_id}")}
    for (method, path), op in operations.items():
        assert op["summary"], path
        assert len(op["description"]) > 60, path
        assert op["security"] == ([] if (method, path) in open_ones else [{"bearer": []}])
        assert "422" not in op["responses"] or method in ("post", "put"), path
        for status, answer in op["responses"].items():
            assert answer["description"], (path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_document__fhir_types_enumerated_and_fhir_json_declared() -> None:
    read = _document()["paths"]["/fhir/{resource_type}/{logical_id}"]["get"]
    (kind,) = [p for p in read["parameters"] if p["name"] == "resource_type"]
    assert "Observation" in kind["schema"]["enum"]
    assert "AuditEvent" not in kind["schema"]["enum"]
    assert set(read["responses"]["200"]["content"]) == {"application/fhir+json", "application/json"}
    assert set(read["responses"]["404"]["content"]) == {"application/fhir+json"}


def test_document__clinic_post_declares_its_body_receipt_and_problems() -> None:
    post = _document()["paths"]["/clinic/encounters"]["post"]
    assert post["requestBody"]["required"] is True
    assert "application/json" in post["requestBody"]["content"]
    receipt = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert receipt == {"$ref": "#/components/schemas/Receipt"}
    for status in ("400", "401", "403", "409", "413", "415", "422", "503"):
        problem = post["responses"][status]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}


def test_checks__every_built_in_check_runs() -> None:
    load_all_checks()
    assert len(CHECKS.get_all_names()) >= 14


# A free-text path parameter has no invalid value: negative cases only where there is a body
# or a parameter with a schema to break.
def _negatable(operation: Any) -> bool:
    path: str = operation.path
    return operation.method.upper() == "POST" or path.startswith(("/fhir/", "/admin/"))


RUNS = [
    pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _negatable(operation)
]


@pytest.mark.parametrize(("operation", "mode"), RUNS)
def test_whole_document__generated_requests__every_check_passes(
    operation: Any, mode: GenerationMode, base_url: str
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        statuses.append(case.call_and_validate(base_url=base_url, timeout=60).status_code)

    statuses: list[int] = []
    conforms()
    if mode is GenerationMode.POSITIVE:
        # Negative examples may all break the credential itself, which 401 rightly answers.
        assert any(status != 401 for status in statuses), "the key reached the operation"


def _stored(base_url: str, path: str) -> dict[str, Any]:
    reply = httpx2.get(base_url + path, headers=bearer(KEY), timeout=60)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


KNOWN_GOOD = [
    ("/fhir/{resource_type}/{logical_id}", "GET"),
    ("/fhir/{resource_type}/{logical_id}/_history/{version_id}", "GET"),
    ("/fhir/{resource_type}/{logical_id}/_history", "GET"),
    ("/fhir/{resource_type}/{logical_id}/$everything", "GET"),
]


@pytest.mark.parametrize(("path", "method"), KNOWN_GOOD)
def test_stored_resources__answers_conform(path: str, method: str, base_url: str) -> None:
    patient = _stored(base_url, "/fhir/Patient?_count=1")["entry"][0]["resource"]
    parameters = {
        "resource_type": "Patient",
        "logical_id": patient["id"],
        "version_id": patient["meta"]["versionId"],
    }
    wanted = {name: parameters[name] for name in parameters if "{" + name + "}" in path}
    case = SCHEMA[path][method].Case(path_parameters=wanted)
    response = case.call_and_validate(base_url=base_url, headers=bearer(KEY), timeout=60)
    assert response.status_code == 200


def test_stored_patient_and_submission__answers_conform(base_url: str) -> None:
    mrn = json.loads(example_bytes(EXAMPLE_NAMES[0]))["patient"]["mrn"]
    patient = SCHEMA["/clinic/patients/{mrn}"]["GET"].Case(path_parameters={"mrn": mrn})
    assert patient.call_and_validate(base_url=base_url, headers=bearer(KEY)).status_code == 200
    status = SCHEMA["/clinic/submissions/{submission_id}"]["GET"].Case(
        path_parameters={"submission_id": SUBMISSION_IDS[0]}
    )
    assert status.call_and_validate(base_url=base_url, headers=bearer(KEY)).status_code == 200


def test_store_unavailable__retry_after_is_an_integer_as_declared() -> None:
    assert StoreUnavailable("x").headers()["Retry-After"].isdigit()
