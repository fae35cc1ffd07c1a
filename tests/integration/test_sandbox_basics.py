"""The HAPI FHIR sandbox does what every later test relies on: conditional create,
transactions with internal references, and `$validate` against the R4 definitions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
MRN_SYSTEM = "https://fhir.it-sandbox.example/sid/mrn"
TIMEOUT = 60


def _json(reply: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = reply.json()
    return body


def _patient(mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
        "name": [{"family": "Test", "given": ["Sandbox"]}],
    }


def _heart_rate(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def _create_if_none_exist(base: str, mrn: str) -> requests.Response:
    return requests.post(
        f"{base}/Patient",
        json=_patient(mrn),
        headers={
            **FHIR_JSON,
            "If-None-Exist": f"identifier={MRN_SYSTEM}|{mrn}",
            "Prefer": "return=representation",
        },
        timeout=TIMEOUT,
    )


def test_conditional_create__same_identifier_twice__exactly_one_patient(
    fhir_base_url: str,
) -> None:
    mrn = f"MRN-{uuid.uuid4()}"
    first = _create_if_none_exist(fhir_base_url, mrn)
    second = _create_if_none_exist(fhir_base_url, mrn)
    assert first.status_code == 201, first.text[:1000]
    assert second.status_code == 200, second.text[:1000]
    found = requests.get(
        f"{fhir_base_url}/Patient",
        params={"identifier": f"{MRN_SYSTEM}|{mrn}"},
        headers=FHIR_JSON,
        timeout=TIMEOUT,
    )
    entries = _json(found).get("entry", [])
    assert len(entries) == 1
    assert entries[0]["resource"]["id"] == _json(first)["id"] == _json(second)["id"]


def test_transaction__urn_uuid_reference__observation_subject_is_created_patient(
    fhir_base_url: str,
) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": _patient(f"MRN-{uuid.uuid4()}"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _heart_rate(patient_urn),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    reply = requests.post(fhir_base_url, json=bundle, headers=FHIR_JSON, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text[:1000]
    patient_location, observation_location = (
        entry["response"]["location"] for entry in _json(reply)["entry"]
    )
    patient_ref = "/".join(patient_location.split("/")[:2])  # Patient/<id>/_history/1
    observation_ref = "/".join(observation_location.split("/")[:2])
    observation = requests.get(
        f"{fhir_base_url}/{observation_ref}", headers=FHIR_JSON, timeout=TIMEOUT
    )
    assert observation.status_code == 200
    assert _json(observation)["subject"]["reference"] == patient_ref


def test_validate__observation_missing_status_and_code__error_operation_outcome(
    fhir_base_url: str,
) -> None:
    invalid = _heart_rate("Patient/example")
    del invalid["status"], invalid["code"]
    reply = requests.post(
        f"{fhir_base_url}/Observation/$validate", json=invalid, headers=FHIR_JSON, timeout=TIMEOUT
    )
    outcome = _json(reply)
    assert outcome["resourceType"] == "OperationOutcome"
    errors = [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]
    assert errors, outcome
    assert any("Observation.status" in str(issue) for issue in errors), errors
