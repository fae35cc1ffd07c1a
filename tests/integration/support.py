"""Shared by the push/sync integration tests: many distinct encounters, and counting them
on the sandbox by identifier system.

Each run uses its own namespace (`https://fhir.it-<tag>.example`), so every identifier
system is new to the sandbox and a count by system counts exactly this run's resources.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import requests

from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.unit.mappings.fhircheck import load_example

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def run_context() -> MappingContext:
    return MappingContext(namespace=f"https://fhir.it-{uuid.uuid4().hex[:10]}.example")


def encounter(
    n: int, example: str = "typical-ketamine-infusion", visit: int = 0
) -> EncounterSubmission:
    """The shared example with every clinic id made unique to `n` (patient included); a
    `visit` above 0 is another encounter of that same patient, with records of its own."""
    data = load_example(example).model_dump(mode="json", exclude_none=True)
    data["patient"]["mrn"] += f"-N{n}"
    suffix = f"-N{n}" + (f"-V{visit}" if visit else "")
    data["encounter_id"] += suffix
    for record, key in (
        ("intake_screening", "screening_id"),
        ("infusion", "procedure_id"),
        ("medication_review", "review_id"),
    ):
        if record in data:
            data[record][key] += suffix
    for reading in data.get("vitals", []):
        reading["vitals_id"] += suffix
    return EncounterSubmission.model_validate(data)


def encounters(
    count: int, example: str = "typical-ketamine-infusion"
) -> Iterator[EncounterSubmission]:
    return (encounter(n, example) for n in range(count))


def sandbox_count(base: str, resource_type: str, system: str) -> int:
    """How many resources of a type the sandbox holds under an identifier system."""
    reply = requests.get(
        f"{base}/{resource_type}",
        params={"identifier": f"{system}|", "_summary": "count"},
        headers=FHIR_JSON,
        timeout=60,
    )
    reply.raise_for_status()
    return int(reply.json()["total"])


def ehr_heart_rates(base: str, patient_ids: list[str], count: int, batch: int = 250) -> None:
    """`count` heart-rate Observations about the patients (in turn), created directly on the
    sandbox as an EHR's users would, in transaction Bundles of `batch`."""
    vital_signs = "http://terminology.hl7.org/CodeSystem/observation-category"
    for start in range(0, count, batch):
        entries = [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{"system": vital_signs, "code": "vital-signs"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{patient_ids[n % len(patient_ids)]}"},
                    "effectiveDateTime": "2026-11-20T10:00:00Z",
                    "valueQuantity": {
                        "value": 60 + n % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
            for n in range(start, min(start + batch, count))
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        reply = requests.post(base, data=orjson.dumps(bundle), headers=FHIR_JSON, timeout=600)
        reply.raise_for_status()


def ehr_edit(base: str, resource_type: str, ehr_id: str, change: Any) -> dict[str, Any]:
    """Read, change and write back one resource on the sandbox, as an EHR user would."""
    current = requests.get(f"{base}/{resource_type}/{ehr_id}", headers=FHIR_JSON, timeout=30)
    current.raise_for_status()
    body = current.json()
    change(body)
    reply = requests.put(
        f"{base}/{resource_type}/{ehr_id}",
        data=orjson.dumps(body),
        headers={**FHIR_JSON, "If-Match": current.headers["ETag"]},
        timeout=30,
    )
    reply.raise_for_status()
    return dict(reply.json())


def set_phone(phone: str) -> Any:
    def change(patient: dict[str, Any]) -> None:
        others = [t for t in patient.get("telecom", []) if t.get("system") != "phone"]
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}, *others]

    return change
