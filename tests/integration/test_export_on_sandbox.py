"""HAPI's own Bulk Data `$export`, enabled in the sandbox: system, Patient and Group level,
kicked off with `Prefer: respond-async`, polled as the status URL's `Retry-After` asks, and
every NDJSON file downloaded from `Binary`. Each test writes its resources under a new
identifier system and restricts the export to them with `_typeFilter`, so what other tests
left in the sandbox does not count."""

from __future__ import annotations

import pytest
import requests

from tests.integration.bulk_export import run_export
from tests.integration.export_data import (
    FHIR_JSON,
    TIMEOUT,
    exported_ids,
    new_system,
    only,
    write_observations,
    write_patients,
)

pytestmark = pytest.mark.integration

# HAPI writes at most 1,000 resources to one file: one more than that needs a second file.
OBSERVATIONS_PAST_ONE_FILE = 1005


def test_system_export__1005_observations__every_file_downloaded_and_counts_match(
    fhir_base_url: str,
) -> None:
    system = new_system()
    patients = write_patients(fhir_base_url, system, 3)
    observations = write_observations(fhir_base_url, system, patients, OBSERVATIONS_PAST_ONE_FILE)

    export = run_export(f"{fhir_base_url}/$export", only(system))

    assert export.counts() == {"Patient": 3, "Observation": OBSERVATIONS_PAST_ONE_FILE}
    assert exported_ids(export, "Patient") == sorted(patients)
    assert exported_ids(export, "Observation") == sorted(observations)
    files = [output["type"] for output in export.manifest["output"]]
    assert files.count("Observation") == 2, export.manifest["output"]
    assert export.manifest["error"] == []
    assert export.manifest["requiresAccessToken"] is True
    assert export.manifest["request"].startswith(f"{fhir_base_url}/$export")
    # The sandbox asks for a short wait (SANDBOX_EXPORT_RETRY_AFTER), never HAPI's 120 s.
    assert all(0 <= wait <= 10 for wait in export.waits), export.waits


def test_patient_export__patients_and_their_observations__all_exported(
    fhir_base_url: str,
) -> None:
    system = new_system()
    patients = write_patients(fhir_base_url, system, 2)
    observations = write_observations(fhir_base_url, system, patients, 4)

    export = run_export(f"{fhir_base_url}/Patient/$export", only(system))

    assert exported_ids(export, "Patient") == sorted(patients)
    assert exported_ids(export, "Observation") == sorted(observations)


def test_group_export__group_of_two_of_three_patients__only_their_resources(
    fhir_base_url: str,
) -> None:
    system = new_system()
    patients = write_patients(fhir_base_url, system, 3)
    observations = write_observations(fhir_base_url, system, patients, 6)
    members = patients[:2]
    group = requests.post(
        f"{fhir_base_url}/Group",
        json={
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
        },
        headers=FHIR_JSON,
        timeout=TIMEOUT,
    )
    assert group.status_code == 201, group.text[:1000]

    export = run_export(f"{fhir_base_url}/Group/{group.json()['id']}/$export", only(system))

    assert exported_ids(export, "Patient") == sorted(members)
    # Observation n is about patient n % 3: those of the third patient stay out.
    theirs = [oid for n, oid in enumerate(observations) if n % 3 != 2]
    assert exported_ids(export, "Observation") == sorted(theirs)


def test_export_cancel__delete_on_status_url__accepted_and_job_gone(fhir_base_url: str) -> None:
    system = new_system()
    write_patients(fhir_base_url, system, 1)
    status = requests.get(
        f"{fhir_base_url}/$export",
        params=only(system),
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
        timeout=TIMEOUT,
    ).headers["Content-Location"]

    cancelled = requests.delete(status, timeout=TIMEOUT)

    assert cancelled.status_code == 202, cancelled.text[:1000]
    after = requests.get(status, timeout=TIMEOUT)
    assert after.status_code == 404, after.text[:1000]


def test_export_kick_off__without_prefer_respond_async__refused(fhir_base_url: str) -> None:
    reply = requests.get(
        f"{fhir_base_url}/$export", headers={"Accept": "application/fhir+json"}, timeout=TIMEOUT
    )
    assert reply.status_code == 400, reply.text[:1000]
