"""No patient identifier in any log, at DEBUG, on the real sandbox.

A document with sentinel names, MRN, birth date and encounter id goes through the service as
deployed (two web processes, the parent pushing and pulling every second): posted, resent,
read back through `/clinic` and `/fhir` (the MRN in a path and in a query), pushed, edited
on the EHR and pulled back. Then every command runs on that store at DEBUG: ingest (a changed
document), map, push --dry-run, push, pull, reconcile (text and JSON), outbox (counts, list,
show of every entry), conflicts, lineage, keys check and new, migrate.

Searched for the sentinels: every line the service wrote (the parent's and the web
processes' stdout and stderr), every command's stderr, and every command's stdout except
those of `adapter map` and `adapter push --dry-run`, which print the Bundles, the record
itself, by design (docs/operations.md#logs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from adapter.store.engine import create_store_engine
from adapter.store.schema import outbox
from tests.integration.support import FHIR_JSON
from tests.integration.test_clinic_api import serving
from tests.unit.adapter.api.conftest import SENTINELS, sentinel_document

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY = f"logs-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {KEY}"}
MRN = "MRN-SENTINEL-7731"
# Commands whose stdout is the clinical record by design: only their stderr is searched.
PRINT_THE_RECORD = ("map", "push --dry-run")


def test_sentinel_patient__service_and_every_command_at_debug__no_line_names_it(
    fhir_base_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    tenant = f"logs-{tag}"
    keys = tmp_path / "keys.json"
    scopes = ["clinic/*.*", "system/*.rs"]
    keys.write_text(json.dumps([{"key": KEY, "tenant": tenant, "scopes": scopes}]))
    settings = {
        "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'adapter.db'}",
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": f"https://fhir.logs-{tag}.example",
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_LOG_LEVEL": "DEBUG",
        "ADAPTER_WEB_WORKERS": "2",
        "ADAPTER_PULL_INTERVAL_SECONDS": "1",
        "ADAPTER_TENANT": tenant,
    }
    service_log = tmp_path / "service.log"
    with serving(settings, service_log) as url:
        patient = _through_the_service(url, fhir_base_url)
    searched = {"adapter serve (every process)": service_log.read_text()}
    changed = sentinel_document()
    changed["patient"]["phone"] = "+1-555-010-9999"
    document = tmp_path / "changed.json"
    document.write_text(json.dumps(changed))
    for command in _commands(str(document), patient, tenant, settings["ADAPTER_DATABASE_URL"]):
        searched |= _run(command, settings)
    found = [
        f"{source}: {line}"
        for source, text in searched.items()
        for line in text.splitlines()
        if any(sentinel in line for sentinel in SENTINELS)
    ]
    assert found == []
    assert "DEBUG" in searched["adapter serve (every process)"]
    assert "DEBUG urllib3" in searched["adapter push: stderr"]  # the requests were logged


def _through_the_service(url: str, ehr: str) -> str:
    """Every clinic and FHIR call with the sentinel; an EHR edit pulled back. Our Patient
    reference."""
    body = json.dumps(sentinel_document()).encode()
    posted = _post(url, body)
    assert posted.status_code == 201, posted.text
    assert _post(url, body).status_code == 200
    receipt = posted.json()
    patient: str = next(ref for ref in receipt["created"] if ref.startswith("Patient/"))
    status = _until(lambda: _pushed(url, receipt["status_url"]), "the push")
    ehr_patient = next(r for r in status["ehr_references"] if r["resource"] == patient)
    reads = [
        f"{url}/clinic/patients/{MRN}",
        f"{url}/fhir/Patient?identifier={MRN}",
        f"{url}/fhir/Patient?family=Quixotewhistle&birthdate=1911-11-11",
        f"{url}/fhir/{patient}",
        f"{url}/fhir/Patient/{MRN}",
    ]
    for read in reads:
        assert requests.get(read, headers=AUTH, timeout=30).status_code in (200, 404)
    _edit_phone(ehr, ehr_patient["ehr_reference"])
    _until(lambda: _pulled_back(url), "the scheduled pull to bring the EHR's edit")
    return patient


def _post(url: str, body: bytes) -> requests.Response:
    """POST the encounter, waiting out the 503s of a store still being migrated."""
    deadline = time.monotonic() + 60
    while True:
        reply = requests.post(
            f"{url}/clinic/encounters",
            data=body,
            headers=AUTH | {"Content-Type": "application/json"},
            timeout=30,
        )
        if reply.status_code != 503 or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def _pushed(url: str, status_url: str) -> Any:
    body = requests.get(f"{url}{status_url}", headers=AUTH, timeout=30).json()
    return body if body["status"] == "pushed" else None


def _edit_phone(ehr: str, reference: str) -> None:
    current = requests.get(f"{ehr}/{reference}", headers=FHIR_JSON, timeout=30)
    current.raise_for_status()
    patient = current.json()
    patient["telecom"] = [{"system": "phone", "value": "+1 555 0188", "use": "mobile"}]
    headers = FHIR_JSON | {"If-Match": current.headers["ETag"]}
    edited = requests.put(f"{ehr}/{reference}", json=patient, headers=headers, timeout=30)
    edited.raise_for_status()


def _pulled_back(url: str) -> bool:
    reply = requests.get(f"{url}/clinic/patients/{MRN}", headers=AUTH, timeout=30)
    return reply.status_code == 200 and reply.json()["patient"]["phone"] == "+1 555 0188"


def _until(check: Any, what: str, seconds: float = 180) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


def _commands(document: str, patient: str, tenant: str, database: str) -> list[list[str]]:
    states = ["pending", "in_flight", "done", "dead", "conflict"]
    listing = [arg for state in states for arg in ("--state", state)]
    commands = [
        ["migrate"],
        ["ingest", document],
        ["map", document],
        ["push", "--dry-run"],
        ["push"],
        ["pull"],
        ["pull", "--tenant", tenant],
        ["reconcile", "--tenant", tenant],
        ["reconcile", "--tenant", tenant, "--json"],
        ["outbox"],
        ["outbox", "list", *listing],
        ["conflicts", "--all"],
        ["lineage", patient],
        ["keys", "check"],
        ["keys", "new", "--tenant", tenant],
    ]
    engine = create_store_engine(database)
    try:
        with engine.connect() as conn:
            ids = conn.execute(select(outbox.c.id)).scalars().all()
    finally:
        engine.dispose()
    return commands + [["outbox", "show", str(entry_id)] for entry_id in ids]


def _run(command: list[str], settings: dict[str, str]) -> dict[str, str]:
    """`adapter COMMAND` at DEBUG: its stderr, and its stdout unless it prints the record."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | settings
    done = subprocess.run(
        [sys.executable, "-m", "adapter.cli", *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    name = " ".join(command[:2] if command[1:2] == ["--dry-run"] else command[:1])
    # 1: done, with something to act on (a difference, a conflict): still a normal run.
    assert done.returncode in (0, 1), (command, done.stderr[-2000:])
    found = {f"adapter {' '.join(command)}: stderr": done.stderr}
    if name not in PRINT_THE_RECORD:
        found[f"adapter {' '.join(command)}: stdout"] = done.stdout
    return found
