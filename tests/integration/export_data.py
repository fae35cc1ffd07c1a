"""Resources for the export tests: Patients and heart-rate Observations written under a new
identifier system, and the export parameters that select exactly them (so that whatever else
the server holds does not count)."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.integration.bulk_export import Export

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
TIMEOUT = 120
BUNDLE_SIZE = 250


def new_system() -> str:
    return f"https://fhir.it-export-{uuid.uuid4().hex[:10]}.example/sid"


def _post_transaction(base: str, entries: list[dict[str, Any]]) -> list[str]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    reply = requests.post(base, json=bundle, headers=FHIR_JSON, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text[:1000]
    # response.location: "Patient/123/_history/1"
    return [entry["response"]["location"].split("/")[1] for entry in reply.json()["entry"]]


def write_patients(base: str, system: str, count: int) -> list[str]:
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": f"P{n}"}],
                "name": [{"family": "Export", "given": [f"N{n}"]}],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
        for n in range(count)
    ]
    return _post_transaction(base, entries)


def write_observations(base: str, system: str, patient_ids: list[str], count: int) -> list[str]:
    """`count` heart rates about the patients in turn, in transaction Bundles."""
    ids: list[str] = []
    for start in range(0, count, BUNDLE_SIZE):
        entries = [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "identifier": [{"system": system, "value": f"O{n}"}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{patient_ids[n % len(patient_ids)]}"},
                    "valueQuantity": {
                        "value": 60 + n % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
            for n in range(start, min(start + BUNDLE_SIZE, count))
        ]
        ids += _post_transaction(base, entries)
    return ids


def only(system: str) -> dict[str, str]:
    """Export parameters that keep the export to the Patients and Observations of `system`."""
    return {
        "_type": "Patient,Observation",
        "_typeFilter": f"Patient?identifier={system}|,Observation?identifier={system}|",
    }


def exported_ids(export: Export, resource_type: str) -> list[str]:
    return sorted(str(item["id"]) for item in export.resources.get(resource_type, []))
