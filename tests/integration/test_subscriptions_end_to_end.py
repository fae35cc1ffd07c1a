"""FHIR Subscriptions end to end: `adapter serve` and `adapter worker` as real processes, a
real receiver started here, a subscription made with an independent client (fhirpy), on
SQLite and on PostgreSQL.

Every event arrives once and in order with the right payload, another tenant's encounters
never arrive, a worker killed (SIGKILL) mid-delivery loses nothing (a restarted one sends
the rest; `$events` gives every event again), a receiver answering 500 then recovering gets
everything, and an endpoint at a private address is refused."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.subscription_topics import ENCOUNTER
from tests.integration.test_clinic_api import serving
from tests.processes import wait_until_ended
from tests.receiver import Receiver
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
KEY_A = "subscriber-a-of-the-end-to-end-test-0123456789"
KEY_B = "subscriber-b-of-the-end-to-end-test-0123456789"
SCOPES = ["clinic/encounters.write", "system/Subscription.*"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def tenants() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]  # PostgreSQL is shared between tests: tenants of our own
    return f"subs-a-{run}", f"subs-b-{run}"


@pytest.fixture
def settings(database: str, tenants: tuple[str, str], tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            [
                {"key": KEY_A, "tenant": tenants[0], "scopes": SCOPES},
                {"key": KEY_B, "tenant": tenants[1], "scopes": SCOPES},
            ]
        )
    )
    return {
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": "",
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_RUN_WORKER": "false",
        "ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1",
        # A lease of 3 x 2 + 5 s: a restarted worker takes a killed one's work soon.
        "ADAPTER_SUBSCRIPTION_TIMEOUT_SECONDS": "2",
        "ADAPTER_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def service(settings: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with serving(settings, tmp_path / "serve.log") as url:
        yield url


@contextmanager
def worker(settings: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | settings
    command = [sys.executable, "-m", "adapter.cli", "worker"]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=sink)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(60)


def fhir(service: str, key: str = KEY_A) -> SyncFHIRClient:
    return SyncFHIRClient(f"{service}/fhir", authorization=f"Bearer {key}")


def subscribe(client: SyncFHIRClient, endpoint: str, **channel: Any) -> Any:
    made = client.resource(
        "Subscription",
        meta={"profile": [BACKPORT + "backport-subscription"]},
        status="requested",
        reason="tell the EHR of every infusion",
        criteria=ENCOUNTER,
        channel={
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {
                "extension": [
                    {"url": BACKPORT + "backport-payload-content", "valueCode": "full-resource"}
                ]
            },
            "header": ["Authorization: Bearer the-receivers-own-secret"],
        }
        | channel,
    )
    made.save()
    return made


def one_at_a_time() -> dict[str, Any]:
    """The channel extension asking one event per notification (the most sends to kill)."""
    return {"extension": [{"url": BACKPORT + "backport-max-count", "valuePositiveInt": 1}]}


def post_encounter(service: str, number: int, key: str = KEY_A) -> None:
    document = json.loads((EXAMPLES_DIR / "esketamine-session.json").read_text())
    document = copy.deepcopy(document)
    document["encounter_id"] = f"ENC-E2E-{number:03d}"
    document["patient"]["mrn"] = f"MRN-E2E-{number % 3}"
    reply = requests.post(
        f"{service}/clinic/encounters",
        json=document,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert reply.status_code == 201, reply.text


def encounter_ids(hook: Receiver) -> list[str]:
    """The clinic encounter id of each event's focus, in the order received."""
    found = []
    for note in hook.of_kind("event-notification"):
        for entry in note.bundle["entry"][1:]:
            resource = entry["resource"]
            assert resource["resourceType"] == "Encounter"
            found.append(resource["identifier"][0]["value"])
    return found


def first_arrivals(numbers: list[int]) -> list[int]:
    return list(dict.fromkeys(numbers))


def test_worker_killed_mid_delivery__nothing_lost_each_in_order_and_events_recovers(
    service: str, settings: dict[str, str], hook: Receiver, tmp_path: Path
) -> None:
    count = 12
    made = subscribe(fhir(service), hook.url, **one_at_a_time())
    with worker(settings, tmp_path / "worker.log"):
        hook.wait_for(lambda: hook.of_kind("handshake"), 60, "the handshake")
    assert fhir(service).reference("Subscription", made.id).to_resource()["status"] == "active"
    hook.delay = 0.3  # each answer takes a while: the kill lands mid-delivery
    for number in range(1, count + 1):
        post_encounter(service, number)
        post_encounter(service, 100 + number, KEY_B)  # another tenant's: never delivered
    with worker(settings, tmp_path / "worker.log") as first:
        hook.wait_for(lambda: len(hook.event_numbers()) >= 3, 120, "the first events")
        first.send_signal(signal.SIGKILL)
        wait_until_ended(first.pid, "the killed worker")
    interrupted = first_arrivals(hook.event_numbers())
    assert len(interrupted) < count, "killed too late to prove anything"
    hook.delay = 0.0
    with worker(settings, tmp_path / "worker.log"):
        hook.wait_for(lambda: len(set(hook.event_numbers())) == count, 180, "every event")
    numbers = hook.event_numbers()
    assert first_arrivals(numbers) == list(range(1, count + 1))
    assert len(numbers) - count <= 1, "only the notification in flight may come twice"
    ids = list(dict.fromkeys(encounter_ids(hook)))
    assert ids == [f"ENC-E2E-{n:03d}" for n in range(1, count + 1)]
    first_note = hook.of_kind("event-notification")[0]
    assert first_note.headers["Authorization"] == "Bearer the-receivers-own-secret"
    events = fhir(service).execute(
        f"Subscription/{made.id}/$events", method="get", params={"content": "id-only"}
    )
    status = events["entry"][0]["resource"]["parameter"]
    given = [
        int(part["valueString"])
        for p in status
        if p["name"] == "notification-event"
        for part in p["part"]
        if part["name"] == "event-number"
    ]
    assert given == list(range(1, count + 1))
    made.delete()


def test_receiver_500_then_recovering__gets_everything_in_order(
    service: str, settings: dict[str, str], hook: Receiver, tmp_path: Path
) -> None:
    made = subscribe(fhir(service), hook.url)
    with worker(settings, tmp_path / "worker.log"):
        hook.wait_for(lambda: hook.of_kind("handshake"), 60, "the handshake")
        hook.answers = [500, 500, 500]
        for number in range(1, 6):
            post_encounter(service, number)
        hook.wait_for(lambda: len(set(hook.event_numbers())) == 5, 120, "every event")
    assert hook.event_numbers() == [1, 2, 3, 4, 5]
    assert hook.answers == []
    made.delete()


def test_endpoint_at_a_private_address__refused(service: str) -> None:
    client = fhir(service)
    # 127.0.0.1 is listed (the receivers here); `localhost` is not, and resolves to loopback.
    for endpoint in ("https://10.0.0.8/hook", "https://localhost:9/hook"):
        with pytest.raises(OperationOutcome) as refused:
            subscribe(client, endpoint)
        assert "Subscription.channel.endpoint" in str(refused.value)
