"""The push worker against the real sandbox: nothing lost, nothing duplicated.

Each test maps its encounters under a namespace of its own, so the counts by identifier
system on the long-lived sandbox count exactly that test's resources.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, func, select

from adapter.cli import main
from adapter.config import DEFAULT_MAX_READINGS_PER_DOCUMENT
from adapter.ehr.client import FhirClient
from adapter.ingest import ingest_encounter
from adapter.store import outbox as box
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import outbox, resources
from adapter.sync.push.payload import Payload
from adapter.sync.push.worker import Backoff, PushWorker
from mappings.common.builders import number
from mappings.common.bundle import WRITTEN_BY_ID, resource_identity
from mappings.common.identity import identity
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import map_submission
from mappings.jsontypes import Resource
from tests.integration.faultproxy import Exchange, FaultProxy
from tests.integration.support import (
    FHIR_JSON,
    encounter,
    encounters,
    run_context,
    sandbox_count,
)
from tests.large_documents import with_readings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# `support.encounter(n)` ends every clinic id of patient n with "-N<n>".
PATIENT_NUMBER = re.compile(rb"-N(\d+)")


def _ingest(engine: Engine, subs: Sequence[EncounterSubmission], ctx: MappingContext) -> None:
    for sub in subs:
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)


def _states(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return box.counts(conn)


def _worker(engine: Engine, base: str, owner: str = "it", concurrency: int = 4) -> PushWorker:
    """A worker as the service runs it (ADAPTER_WORKER_CONCURRENCY's default), quick to retry."""
    return PushWorker(
        engine,
        FhirClient(base, timeout_seconds=60),
        owner=owner,
        backoff=Backoff(base_seconds=0.05),
        concurrency=concurrency,
    )


def _push_until_done(worker: PushWorker, engine: Engine, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while set(_states(engine)) - {box.DONE}:
        assert time.monotonic() < deadline, _states(engine)
        if not worker.run_once().claimed:
            time.sleep(0.05)


def _expected(subs: Sequence[EncounterSubmission], ctx: MappingContext) -> list[Resource]:
    unique: dict[str, Resource] = {}
    for sub in subs:
        for res in map_submission(sub, ctx):
            unique[f"{res['resourceType']}/{res['id']}"] = res
    return list(unique.values())


def _assert_each_once(base: str, resources: Sequence[Resource], ctx: MappingContext) -> None:
    """Every resource is on the sandbox exactly once (and nothing else under our systems)."""
    by_system: Counter[tuple[str, str]] = Counter()
    by_id: dict[str, list[str]] = {}
    for res in resources:
        ident = resource_identity(res, ctx)
        if ident.resource_type in WRITTEN_BY_ID:
            by_id.setdefault(ident.resource_type, []).append(ident.id)
        else:
            by_system[(ident.resource_type, ident.system)] += 1
    found = Counter({key: sandbox_count(base, *key) for key in by_system})
    assert found == by_system
    for kind, ids in by_id.items():
        assert _count_ids(base, kind, ids) == len(ids), kind


def _count_ids(base: str, resource_type: str, ids: list[str]) -> int:
    total = 0
    for start in range(0, len(ids), 50):
        reply = requests.get(
            f"{base}/{resource_type}",
            params={"_id": ",".join(ids[start : start + 50]), "_summary": "count"},
            headers=FHIR_JSON,
            timeout=60,
        )
        reply.raise_for_status()
        total += int(reply.json()["total"])
    return total


def test_push__200_encounters__every_resource_on_the_ehr_exactly_once(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = run_context()
    subs = list(encounters(200))
    _ingest(store, subs, ctx)
    summary = _worker(store, fhir_base_url).drain()
    assert summary.done == 200
    assert _states(store) == {box.DONE: 200}
    _assert_each_once(fhir_base_url, _expected(subs, ctx), ctx)
    _ingest(store, subs, ctx)  # an identical resend of everything: no new work at all
    assert _states(store) == {box.DONE: 200}


def test_push__document_at_the_readings_limit__every_resource_on_the_ehr_once(
    fhir_base_url: str, store: Engine
) -> None:
    """The largest document the default limit lets in (1,000 readings, about 3,000
    resources) is one transaction the EHR takes whole."""
    ctx = run_context()
    sub = EncounterSubmission.model_validate(
        with_readings(DEFAULT_MAX_READINGS_PER_DOCUMENT, "ENC-AT-LIMIT")
    )
    _ingest(store, [sub], ctx)
    expected = _expected([sub], ctx)
    assert len(expected) > 3 * DEFAULT_MAX_READINGS_PER_DOCUMENT
    assert _worker(store, fhir_base_url).drain().done == 1
    _assert_each_once(fhir_base_url, expected, ctx)


def test_push__concurrent_bundles__other_patients_together_one_patient_in_order(
    fhir_base_url: str, store: Engine
) -> None:
    """Four Bundles at a time, behind 20 ms of network: patients overlap, a patient never
    does (its second encounter leaves only after its first was answered), all arrive once."""
    ctx = run_context()
    first = list(encounters(16))
    second = [encounter(n, visit=1) for n in range(6)]
    _ingest(store, first + second, ctx)
    with FaultProxy(fhir_base_url, round_trip_ms=20) as proxy:
        assert _worker(store, proxy.url, concurrency=4).drain().done == len(first) + len(second)
        sent = [e for e in proxy.exchanges if e.method == "POST"]
    patients = [set(PATIENT_NUMBER.findall(e.body)) for e in sent]
    assert all(len(p) == 1 for p in patients), "every Bundle is about one patient"
    together = [
        (a, b) for a, b in itertools.combinations(range(len(sent)), 2) if sent[a].overlaps(sent[b])
    ]
    assert together, "no two Bundles were ever with the EHR at the same time"
    assert _most_at_once(sent) <= 4
    assert not [(a, b) for a, b in together if patients[a] & patients[b]]
    _assert_each_once(fhir_base_url, _expected(first + second, ctx), ctx)


def _most_at_once(exchanges: Sequence[Exchange]) -> int:
    """The most exchanges that were with the server at one moment."""
    events = sorted([(e.started, 1) for e in exchanges] + [(e.ended, -1) for e in exchanges])
    return max(itertools.accumulate(step for _, step in events))


def test_push__reading_removed_in_resend__deleted_on_the_ehr(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = run_context()
    (sub,) = encounters(1)
    _ingest(store, [sub], ctx)
    worker = _worker(store, fhir_base_url)
    worker.drain()
    vitals = list(sub.vitals or ())
    shorter = sub.model_copy(update={"vitals": vitals[:-1]})
    _ingest(store, [shorter], ctx)
    assert worker.drain().done == 1
    assert _states(store) == {box.DONE: 2}
    removed = vitals[-1].vitals_id
    system = f"{ctx.namespace}/sid/vitals"
    reply = requests.get(
        f"{fhir_base_url}/Observation",
        params={"identifier": f"{system}|{removed}~panel", "_summary": "count"},
        headers=FHIR_JSON,
        timeout=60,
    )
    assert reply.json()["total"] == 0
    _assert_each_once(fhir_base_url, map_submission(shorter, ctx), ctx)


@pytest.mark.parametrize("how", ["reset", "500"])
def test_push__acknowledgement_lost_after_commit__retry_leaves_one_copy(
    fhir_base_url: str, store: Engine, how: str
) -> None:
    ctx = run_context()
    subs = list(encounters(3))
    _ingest(store, subs, ctx)
    with FaultProxy(fhir_base_url) as proxy:
        proxy.lose_next_acks(2, how)  # type: ignore[arg-type]
        _push_until_done(_worker(store, proxy.url), store)
        assert proxy.lost == 2
    _assert_each_once(fhir_base_url, _expected(subs, ctx), ctx)


def test_push__worker_killed_mid_push__restart_loses_and_duplicates_nothing(
    fhir_base_url: str, tmp_path: Path
) -> None:
    ctx = run_context()
    database = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(database)
    upgrade(engine)
    subs = list(encounters(500, "esketamine-session"))
    _ingest(engine, subs, ctx)
    env = {
        **os.environ,
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": ctx.namespace,
        "ADAPTER_WORKER_LEASE_SECONDS": "5",
        "ADAPTER_EHR_TIMEOUT_SECONDS": "60",
        "ADAPTER_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "adapter.cli", "worker"]
    first = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while _states(engine).get(box.DONE, 0) < 40:
            assert first.poll() is None, "the worker exited by itself"
            assert time.monotonic() < deadline, _states(engine)
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    interrupted = _states(engine)
    assert interrupted.get(box.DONE, 0) < 500, "killed too late to prove anything"
    second = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 600
        while _states(engine) != {box.DONE: 500}:
            assert second.poll() is None, "the restarted worker exited by itself"
            assert time.monotonic() < deadline, _states(engine)
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    _assert_each_once(fhir_base_url, _expected(subs, ctx), ctx)
    engine.dispose()


class CountingWorker(PushWorker):
    """Records every outbox entry it sends, to prove no entry is sent twice."""

    sent: list[int]
    lock = threading.Lock()

    def _prepare(self, entry: box.Entry) -> Payload:
        with self.lock:
            self.sent.append(entry.id)
        return super()._prepare(entry)


def test_push__two_workers_on_postgres__drain_one_outbox_sending_no_entry_twice(
    fhir_base_url: str, postgres_url: str
) -> None:
    ctx = replace(run_context(), tenant=f"pg-{uuid.uuid4().hex[:8]}")  # one shared database
    engine = create_store_engine(postgres_url)
    upgrade(engine)
    subs = list(encounters(60, "esketamine-session"))
    _ingest(engine, subs, ctx)
    with engine.connect() as conn:
        ours = (
            conn.execute(
                select(outbox.c.id).where(
                    outbox.c.state == box.PENDING, outbox.c.tenant == ctx.tenant
                )
            )
            .scalars()
            .all()
        )
    sent: list[int] = []
    workers = [
        CountingWorker(
            engine,
            FhirClient(fhir_base_url, timeout_seconds=60),
            owner=f"pg-{n}",
            tenant=ctx.tenant,
        )
        for n in (1, 2)
    ]
    for worker in workers:
        worker.sent = sent

    def unfinished() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.id.in_(ours), outbox.c.state != box.DONE)
                ).scalar_one()
            )

    def work(worker: PushWorker) -> None:
        deadline = time.monotonic() + 300
        while unfinished() and time.monotonic() < deadline:
            if not worker.run_once().claimed:
                time.sleep(0.05)  # what is left is in the other worker's hands

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == len(set(sent))
    assert set(ours) <= set(sent)
    assert unfinished() == 0
    _assert_each_once(fhir_base_url, _expected(subs, ctx), ctx)
    engine.dispose()


def _sandbox(action: str, port: str, data_dir: Path) -> None:
    env = {**os.environ, "SANDBOX_PORT": port, "SANDBOX_DATA_DIR": str(data_dir)}
    subprocess.run([f"sandbox/{action}"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


@pytest.mark.skipif(
    os.environ.get("SANDBOX_RESTARTABLE") != "1",
    reason="restarts the sandbox: only when the test command started it (SANDBOX_RESTARTABLE=1)",
)
def test_push__sandbox_stopped_mid_push_and_restarted__everything_arrives_once(
    fhir_base_url: str, store: Engine, tmp_path: Path
) -> None:
    port = fhir_base_url.rsplit(":", 1)[1].split("/", 1)[0]
    data_dir = tmp_path / "ehr-data"
    _sandbox("stop", port, data_dir)
    _sandbox("start", port, data_dir)  # now with a database that survives a restart
    ctx = run_context()
    subs = list(encounters(100, "esketamine-session"))
    _ingest(store, subs, ctx)
    client = FhirClient(fhir_base_url, timeout_seconds=60)
    worker = PushWorker(store, client, owner="it", backoff=Backoff(0.2, cap_seconds=2))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05))
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while _states(store).get(box.DONE, 0) < 10:
            assert time.monotonic() < deadline, _states(store)
            time.sleep(0.05)
        _sandbox("stop", port, data_dir)  # the EHR goes down in the middle of the push
        assert _states(store).get(box.DONE, 0) < 100, "stopped too late to prove anything"
        time.sleep(2)
        _sandbox("start", port, data_dir)
        deadline = time.monotonic() + 300
        while _states(store) != {box.DONE: 100}:
            assert time.monotonic() < deadline, _states(store)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(60)
        client.close()
    _assert_each_once(fhir_base_url, _expected(subs, ctx), ctx)


def test_lineage__resource_on_the_ehr__traced_to_its_clinic_submission(
    fhir_base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = f"sqlite:///{tmp_path / 'lineage.db'}"
    engine = create_store_engine(database)
    upgrade(engine)
    ctx = run_context()
    (sub,) = encounters(1, "esketamine-session")
    _ingest(engine, [sub], ctx)
    _worker(engine, fhir_base_url).drain()
    with engine.connect() as conn:
        ehr_id, logical_id = conn.execute(
            select(resources.c.ehr_id, resources.c.logical_id).where(
                resources.c.resource_type == "Encounter"
            )
        ).one()
    engine.dispose()
    assert requests.get(f"{fhir_base_url}/Encounter/{ehr_id}", timeout=30).ok
    monkeypatch.setenv("ADAPTER_DATABASE_URL", database)
    assert main(["lineage", f"Encounter/{ehr_id}"]) == 0
    out = capsys.readouterr().out
    assert f"-> EHR Encounter/{ehr_id} version 1" in out
    assert f"encounter Encounter/{logical_id}," in out  # ours, never the clinic's id
    assert sub.encounter_id not in out


def test_push_dry_run__changed_reading__shows_field_difference_and_sends_nothing(
    fhir_base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = f"sqlite:///{tmp_path / 'dry.db'}"
    engine = create_store_engine(database)
    upgrade(engine)
    ctx = run_context()
    (sub,) = encounters(1)
    _ingest(engine, [sub], ctx)
    _worker(engine, fhir_base_url).drain()
    vitals = list(sub.vitals or ())
    assert vitals[1].heart_rate is not None
    faster = vitals[1].heart_rate.model_copy(update={"value": vitals[1].heart_rate.value + 20})
    changed = sub.model_copy(
        update={
            "vitals": [vitals[0], vitals[1].model_copy(update={"heart_rate": faster}), *vitals[2:]]
        }
    )
    _ingest(engine, [changed], ctx)
    engine.dispose()
    monkeypatch.setenv("ADAPTER_DATABASE_URL", database)
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", fhir_base_url)
    monkeypatch.setenv("ADAPTER_EHR_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("ADAPTER_NAMESPACE", ctx.namespace)
    assert main(["push", "--dry-run"]) == 0
    out = capsys.readouterr().out
    before, after = number(vitals[1].heart_rate.value), number(faster.value)
    key = _key_of(ctx, sub.encounter_id, vitals[1].vitals_id)
    heart_rate = out[out.index(f"Observation/{key}") :]
    assert f"~ valueQuantity.value: {before} -> {after}" in heart_rate
    assert "reference" not in heart_rate.split("---")[0]  # same EHR ids on both sides
    assert _states(create_store_engine(database)) == {box.DONE: 1, box.PENDING: 1}


def _key_of(ctx: MappingContext, encounter_id: str, vitals_id: str) -> str:
    # Record ids are scoped by their encounter.
    return identity(ctx, "Observation", "vitals", encounter_id, vitals_id, "heart-rate").id
