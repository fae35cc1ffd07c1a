"""The clinic API end to end: `adapter serve` in a subprocess, real HTTP, the sandbox as EHR.

Posts the three shared examples, follows each submission until the service's own push
worker has delivered it, and finds the Encounter on the sandbox by its identifier. The
service runs under a namespace of its own, so the sandbox's other data cannot match.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mappings.common import identity
from mappings.context import MappingContext
from tests.integration.support import sandbox_search
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
API_KEY = f"integration-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"Content-Type": "application/json"} | AUTH


@dataclass(frozen=True)
class Service:
    url: str
    ctx: MappingContext
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _store_ready(reply: requests.Response) -> bool:
    """Every check of `/ready` but the EHR's is up (some tests start the EHR down)."""
    if reply.status_code not in (200, 503):
        return False
    checks = reply.json().get("checks", [])
    return bool(checks) and all(c["status"] != "down" for c in checks if c["name"] != "ehr")


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until `/ready` finds the store ready on ten fresh connections in a row: with several web
    processes each connection may reach another, and one still waiting for the migration
    is alive but not ready (its store routes would answer 503)."""
    deadline = time.monotonic() + 120
    in_a_row = 0
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited while starting"
        try:
            ready = _store_ready(requests.get(f"{url}/ready", timeout=30))
        except requests.RequestException:
            ready = False  # not listening yet, or accepted but not yet answering (busy)
        in_a_row = in_a_row + 1 if ready else 0
        if in_a_row == 10:
            return
        time.sleep(0.05 if ready else 0.2)
    pytest.fail("the store was not ready on ten connections in a row within 120 s")


@pytest.fixture(params=[1, 2], ids=["one-process", "two-web-processes"])
def service(
    fhir_base_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Service]:
    """The service as deployed: one process, or ADAPTER_WEB_WORKERS=2 (the parent migrates
    and pushes; two web processes serve)."""
    base = f"https://fhir.it-{uuid.uuid4().hex[:10]}.example"
    # The clinic's identifiers live in its own namespace under the base (the default).
    ctx = MappingContext(namespace=f"{base}/it-clinic", tenant="it-clinic")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"key": API_KEY, "tenant": "it-clinic", "scopes": ["clinic/*.*"]}]))
    settings = {
        "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'adapter.db'}",
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": base,
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_LOG_LEVEL": "DEBUG",
        "ADAPTER_WEB_WORKERS": str(request.param),
    }
    log = tmp_path / "service.log"
    with serving(settings, log) as url:
        yield Service(url, ctx, log)


@contextmanager
def serving(settings: dict[str, str], log: Path) -> Iterator[str]:
    """`adapter serve` on a free port with `settings` (and no other ADAPTER_* variable; no
    scheduled pull unless `settings` ask for one), logging to `log`; yields its URL once
    `/health` answers, and stops it after."""
    port = _free_port()
    # Pulling is tested on its own (test_pull_on_sandbox.py); elsewhere the service's pull
    # would read every tenant of the shared test PostgreSQL at each start. A sandbox on a
    # busy machine may answer slower than the 10 s default timeout.
    quiet = {"ADAPTER_PULL_INTERVAL_SECONDS": "0", "ADAPTER_EHR_TIMEOUT_SECONDS": "60"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | quiet | settings
    command = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()  # its web processes follow it (adapter.commands.parent_watch)
            process.wait(30)


def _post(service: Service, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """POST an encounter, waiting out the 503s of a store still being migrated."""
    deadline = time.monotonic() + 30
    while True:
        url, sent = f"{service.url}/clinic/encounters", JSON | (headers or {})
        reply = requests.post(url, data=body, headers=sent, timeout=30)
        if reply.status_code != 503 or time.monotonic() > deadline:
            return reply
        time.sleep(float(reply.headers.get("Retry-After", "1")))


def _until_pushed(service: Service, status_url: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = requests.get(f"{service.url}{status_url}", headers=AUTH, timeout=30).json()
        if body["status"] != "stored" or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_clinic_api__every_example__accepted_pushed_and_on_the_sandbox(
    service: Service, fhir_base_url: str
) -> None:
    receipts = {}
    for name in EXAMPLE_NAMES:
        reply = _post(service, (EXAMPLES_DIR / f"{name}.json").read_bytes())
        assert reply.status_code == 201, reply.text
        assert reply.headers["Location"] == reply.json()["status_url"]
        receipts[name] = reply.json()
    resend = _post(service, (EXAMPLES_DIR / f"{EXAMPLE_NAMES[0]}.json").read_bytes())
    assert resend.status_code == 200
    assert resend.json()["created"] == resend.json()["updated"] == []

    for name, receipt in receipts.items():
        status = _until_pushed(service, receipt["status_url"])
        assert status["status"] == "pushed", (name, status)
        system = identity.encounter(service.ctx, receipt["encounter_id"]).system
        found = sandbox_search(fhir_base_url, "Encounter", system, receipt["encounter_id"])
        assert len(found) == 1, name
        references = {r["resource"]: r["ehr_reference"] for r in status["ehr_references"]}
        ours = next(ref for ref in receipt["created"] if ref.startswith("Encounter/"))
        assert references[ours] == f"Encounter/{found[0]['id']}"


def test_clinic_api__fhir_paging__next_links_work_on_whichever_process_answers(
    service: Service,
) -> None:
    """Every page on a new connection, so that with two web processes both answer some:
    a `next` link signed by one must be honoured by the other."""
    for name in EXAMPLE_NAMES:
        assert _post(service, (EXAMPLES_DIR / f"{name}.json").read_bytes()).status_code == 201
    url: str | None = f"{service.url}/fhir/Observation?_count=3"
    seen: list[str] = []
    total = None
    while url:
        with requests.Session() as fresh:
            reply = fresh.get(url, headers=AUTH | {"Connection": "close"}, timeout=30)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        total = page["total"]
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((ln["url"] for ln in page["link"] if ln["relation"] == "next"), None)
    assert total is not None
    assert total > 6
    assert len(seen) == len(set(seen)) == total


def test_clinic_api__concurrent_retries_with_one_key__processed_once(service: Service) -> None:
    body = (EXAMPLES_DIR / "esketamine-session.json").read_bytes()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda _: _post(service, body, key), range(8)))
    statuses = [reply.status_code for reply in replies]
    assert set(statuses) <= {201, 409}, statuses
    first_answers = [
        r for r in replies if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(first_answers) == 1
    ids = {r.json()["submission_id"] for r in replies if r.status_code == 201}
    assert len(ids) == 1


def test_clinic_api__service_log__holds_no_patient_data(service: Service) -> None:
    for name in EXAMPLE_NAMES:
        assert _post(service, (EXAMPLES_DIR / f"{name}.json").read_bytes()).status_code == 201
    broken = json.loads((EXAMPLES_DIR / "stopped-infusion.json").read_text())
    broken["patient"]["birth_date"] = "2999-01-01"
    assert _post(service, json.dumps(broken).encode()).status_code == 422
    logged = service.log.read_text(encoding="utf-8", errors="replace")
    assert "clinic API: submission" in logged
    for name in EXAMPLE_NAMES:
        patient = json.loads((EXAMPLES_DIR / f"{name}.json").read_text())["patient"]
        for value in (patient["mrn"], patient["family_name"], patient["birth_date"]):
            assert value not in logged, (name, value)
