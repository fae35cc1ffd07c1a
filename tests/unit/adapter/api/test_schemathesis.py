"""Schemathesis against the clinic face's OpenAPI schema: whatever it sends, never a 5xx.

The app runs on a real uvicorn on loopback, and every generated request carries a valid API
key holding every clinic scope, so the bodies reach the parsers and the store, not just the
auth check. Bounded (a fixed number of examples per operation, no shrinking) to stay well
under a minute on two cores.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.openapi import from_dict

from adapter.api.app import create_app
from adapter.config import Settings
from tests.unit.adapter.api.conftest import WRITER_B, bearer, serve, settings_for

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    for port in serve(create_app(settings_for(folder, run_worker=False))):
        yield f"http://127.0.0.1:{port}"


def _clinic_schema() -> schemathesis.BaseSchema:
    app = create_app(Settings(database_url="sqlite://", ehr_base_url=""))
    with warnings.catch_warnings():
        # The /fhir face's catch-all for writes (405) repeats one operation id per method;
        # FastAPI warns, and only the clinic face is tested here.
        warnings.simplefilter("ignore", UserWarning)
        document = app.openapi()
    return from_dict(document).include(path_regex="^/clinic/")


def _operations() -> list[Any]:
    operations = []
    for result in _clinic_schema().get_all_operations():
        assert isinstance(result, Ok), result  # an operation the schema cannot describe
        operations.append(result.ok())
    return operations


OPERATIONS = _operations()


def test_schema__covers_every_clinic_endpoint() -> None:
    paths = {operation.path for operation in OPERATIONS}
    assert "/clinic/encounters" in paths
    assert len(paths) == 7
    posts = [operation for operation in OPERATIONS if operation.method.upper() == "POST"]
    assert all(operation.body for operation in posts)  # each documents its JSON body


# A free-text path parameter has no invalid value: negative cases only where there is a body.
RUNS = [
    pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or operation.method.upper() == "POST"
]


@pytest.mark.parametrize(("operation", "mode"), RUNS)
def test_clinic_face__generated_requests__never_5xx(
    operation: Any, mode: GenerationMode, base_url: str
) -> None:
    """Valid documents (positive) reach the store; broken ones (negative) every refusal."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def never_5xx(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=bearer(WRITER_B))
        assert response.status_code < 500, (case.method, case.path, response.status_code)

    never_5xx()
