"""CapabilityStatements: fetching one (each failure the most specific EhrError), reading it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import requests.auth
import responses

from adapter.ehr.capability import fetch_capability_statement, parse_capabilities
from adapter.errors import EhrBadResponse, EhrError, EhrTimeout, EhrUnavailable
from mappings.jsontypes import JsonObject

BASE = "http://ehr.test/fhir"


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_fetch__capability_statement__returned(ehr: responses.RequestsMock) -> None:
    ehr.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    assert fetch_capability_statement(BASE, 1.0)["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"status": 503}, EhrUnavailable),
        ({"body": requests.ConnectionError("refused")}, EhrUnavailable),
        ({"body": requests.ConnectTimeout("slow")}, EhrTimeout),
        ({"status": 404}, EhrBadResponse),
        ({"body": "<html>"}, EhrBadResponse),
        ({"json": ["not", "an", "object"]}, EhrBadResponse),
    ],
)
def test_fetch__failure__most_specific_ehr_error(
    ehr: responses.RequestsMock, reply: dict[str, object], error: type[EhrError]
) -> None:
    ehr.add(responses.GET, f"{BASE}/metadata", **reply)  # type: ignore[arg-type]
    with pytest.raises(error):
        fetch_capability_statement(BASE, 1.0)


def test_fetch__with_auth__auth_applied(ehr: responses.RequestsMock) -> None:
    ehr.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    fetch_capability_statement(BASE, 1.0, auth=requests.auth.HTTPBasicAuth("u", "p"))
    assert str(ehr.calls[0].request.headers["Authorization"]).startswith("Basic ")


def test_parse__server_rest__system_and_resource_interactions() -> None:
    statement: JsonObject = {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {"mode": "client", "interaction": [{"code": "batch"}]},
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}, {"code": "history-system"}],
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "update"}],
                        "conditionalUpdate": True,
                        "conditionalCreate": False,
                        "conditionalRead": "full-support",
                    },
                    {"type": "Observation", "conditionalRead": "not-supported"},
                ],
            },
        ],
    }
    capabilities = parse_capabilities(statement)
    assert capabilities.fhir_version == "4.0.1"
    assert capabilities.supports_transaction
    assert not capabilities.supports_batch
    assert capabilities.resource_interactions["Patient"] == {
        "read",
        "update",
        "conditional-update",
        "conditional-read",
    }
    assert capabilities.supports("Patient", "conditional-update")
    assert not capabilities.supports("Patient", "conditional-create")
    assert not capabilities.supports("Observation", "conditional-read")
    assert not capabilities.supports("Encounter", "read")


def test_parse__no_rest__supports_nothing() -> None:
    capabilities = parse_capabilities({"resourceType": "CapabilityStatement"})
    assert not capabilities.supports_transaction
    assert not capabilities.supports_batch
