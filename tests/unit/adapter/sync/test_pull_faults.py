"""The pull on the EHR's error paths and odd servers (mocked with `responses`; the happy
path, conflicts, deletions and a crash mid-way run against the real sandbox in
tests/integration/test_pull_on_sandbox.py)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
import responses
from sqlalchemy import Engine, select, update

from adapter.ehr.client import FhirClient
from adapter.errors import PullBusy, PullStopped
from adapter.store.accept import Submission, accept
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.schema import DONE, outbox, resources, sync_state
from adapter.sync.pull.merge import Outcome
from adapter.sync.pull.puller import LEASE_NAME, Puller, PullOptions
from adapter.sync.push.worker import Backoff
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from mappings.jsontypes import JsonObject
from tests.store_template import migrated_sqlite
from tests.unit.adapter.ehr.support import BASE
from tests.unit.mappings.fhircheck import load_example

CTX = MappingContext()
TENANT = "default"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PATIENT_EHR_ID = "p1"
Reply = tuple[int, dict[str, str], str]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A store holding one pushed encounter (the patient's EHR id is `p1`)."""
    made = create_store_engine(migrated_sqlite(tmp_path / "store.db"))
    with write_transaction(made) as conn:
        sub = load_example("esketamine-session")
        doc = Submission(TENANT, "encounter", sub.encounter_id, sub.patient.mrn, "e", b"{}")
        accept(conn, doc, map_submission(sub, CTX), CTX, T0)
        conn.execute(
            update(resources)
            .where(resources.c.resource_type == "Patient")
            .values(ehr_id=PATIENT_EHR_ID, ehr_version="1")
        )
        conn.execute(update(outbox).values(state=DONE))  # as if pushed
    yield made
    made.dispose()


def _bundle(
    resources_: list[JsonObject], next_url: str | None = None, kind: str = "searchset"
) -> str:
    body: JsonObject = {
        "resourceType": "Bundle",
        "type": kind,
        "meta": {"lastUpdated": "2026-11-25T10:00:00.000+00:00"},
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources_],
    }
    if next_url is not None:
        body["link"] = [{"relation": "next", "url": next_url}]
    return orjson.dumps(body).decode()


def _statement(ehr_id: str, stamp: str) -> JsonObject:
    return {
        "resourceType": "MedicationStatement",
        "id": ehr_id,
        "meta": {"versionId": "1", "lastUpdated": stamp},
        "status": "active",
        "medicationCodeableConcept": {"text": "sertraline 50 MG"},
        "subject": {"reference": f"Patient/{PATIENT_EHR_ID}"},
    }


def _stamp(n: int) -> str:
    return (T0 + timedelta(minutes=n)).isoformat(timespec="milliseconds")


def _ehr(statements: Callable[[requests.PreparedRequest], Reply]) -> None:
    """The mocked EHR: MedicationStatement searches answered by `statements`, every other
    search with an empty page."""

    def answer(request: requests.PreparedRequest) -> Reply:
        if urlsplit(request.url or "").path.endswith("/MedicationStatement"):
            return statements(request)
        return 200, {}, _bundle([])

    # One callback for every search: `responses` drops the first of several matching ones.
    responses.add_callback(
        responses.GET, re.compile(rf"{re.escape(BASE)}/[A-Za-z]+(\?.*)?$"), answer
    )


def _puller(engine: Engine, slept: list[float] | None = None, **options: Any) -> Puller:
    return Puller(
        engine,
        FhirClient(BASE),
        owner="unit",
        options=PullOptions(deletions=False, **options),
        sleep=(slept if slept is not None else []).append,
        backoff=Backoff(base_seconds=0.5),
    )


def _state(engine: Engine, name: str) -> JsonObject:
    with engine.connect() as conn:
        text = conn.execute(select(sync_state.c.value).where(sync_state.c.name == name)).scalar()
    value = orjson.loads(text) if text is not None else {}
    assert isinstance(value, dict)
    return value


def _query(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url or "").query)


@responses.activate
def test_pull__server_unavailable_then_answers__retried_with_backoff(engine: Engine) -> None:
    answers: Iterator[Reply] = iter(
        [(503, {}, ""), (200, {}, _bundle([_statement("s1", _stamp(1))]))]
    )
    _ehr(lambda _: next(answers))
    slept: list[float] = []

    summary = _puller(engine, slept).pull(TENANT)

    assert summary.counts[Outcome.IMPORTED] == 1
    assert not summary.failed
    assert len(slept) == 1


@responses.activate
def test_pull__unavailable_every_time__channel_given_up_others_still_pulled(
    engine: Engine,
) -> None:
    _ehr(lambda _: (503, {}, ""))
    summary = _puller(engine, attempts=2).pull(TENANT)
    assert summary.failed == ["MedicationStatement: EhrUnavailable"]
    assert summary.channels > 5, "the other channels ran"
    assert _state(engine, "pull/MedicationStatement") == {}, "no cursor: nothing was read"


@responses.activate
def test_pull__next_link_to_another_host__refused_first_page_kept(engine: Engine) -> None:
    page = _bundle([_statement("s1", _stamp(1))], next_url="https://elsewhere.test/fhir/x")
    _ehr(lambda _: (200, {}, page))

    summary = _puller(engine).pull(TENANT)

    assert summary.failed == ["MedicationStatement: EhrBadResponse"]
    assert summary.counts[Outcome.IMPORTED] == 1
    assert all("elsewhere" not in (call.request.url or "") for call in responses.calls)
    run = _state(engine, "pull/MedicationStatement")["run"]
    assert isinstance(run, dict)
    assert run["after"] == "2026-11-24T09:01:00.000+00:00"


@responses.activate
def test_pull__more_pages_than_allowed__stopped_and_next_pull_resumes_after_them(
    engine: Engine,
) -> None:
    served = 0

    def endless(request: requests.PreparedRequest) -> Reply:
        nonlocal served
        served += 1
        return 200, {}, _bundle([_statement(f"s{served}", _stamp(served))], f"{BASE}/p{served}")

    responses.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/p\d+$"), endless)
    _ehr(endless)

    first = _puller(engine, max_pages=2).pull(TENANT)

    assert first.failed == ["MedicationStatement: EhrBadResponse"]
    assert first.counts[Outcome.IMPORTED] == 2
    responses.calls.reset()
    _puller(engine, max_pages=2).pull(TENANT)
    searches = [
        c.request
        for c in responses.calls
        if (c.request.url or "").startswith(f"{BASE}/MedicationStatement?")
    ]
    assert _query(searches[0])["_lastUpdated"] == ["ge2026-11-24T09:02:00.000+00:00"]


@responses.activate
def test_pull__server_ignores_the_sort__resume_point_not_moved(engine: Engine) -> None:
    unsorted = [_statement("s2", _stamp(2)), _statement("s1", _stamp(1))]
    answers: Iterator[Reply] = iter([(200, {}, _bundle(unsorted, f"{BASE}/page2"))])
    _ehr(lambda _: next(answers))
    responses.add(responses.GET, f"{BASE}/page2", status=500)

    summary = _puller(engine, attempts=1).pull(TENANT)

    assert summary.counts[Outcome.IMPORTED] == 2
    run = _state(engine, "pull/MedicationStatement")["run"]
    assert isinstance(run, dict)
    assert run["after"] is None, "out of order: the chunk is read again from its start"


@responses.activate
def test_pull__searches_scoped_to_our_patient_sorted_and_counted(engine: Engine) -> None:
    _ehr(lambda _: (200, {}, _bundle([])))
    _puller(engine, page_size=50).pull(TENANT)
    (search,) = [
        c.request for c in responses.calls if "/MedicationStatement?" in (c.request.url or "")
    ]
    query = _query(search)
    assert query["patient"] == [PATIENT_EHR_ID]
    assert query["_sort"] == ["_lastUpdated"]
    assert query["_count"] == ["50"]
    assert "_lastUpdated" not in query, "the first pull reads everything"
    assert search.headers["Cache-Control"] == "no-cache"
    responses.calls.reset()
    _puller(engine, page_size=50, overlap=timedelta(seconds=60)).pull(TENANT)
    (again,) = [
        c.request for c in responses.calls if "/MedicationStatement?" in (c.request.url or "")
    ]
    # The cursor is the EHR's clock (the Bundle's meta.lastUpdated) less the overlap.
    assert _query(again)["_lastUpdated"] == ["ge2026-11-25T09:59:00.000+00:00"]


def test_pull__lease_held_by_a_running_pull__busy(engine: Engine) -> None:
    other = f"{socket.gethostname()}:{os.getpid()}:service"
    _hold_lease(engine, other)
    with pytest.raises(PullBusy):
        _puller(engine).pull(TENANT)


@responses.activate
def test_pull__lease_of_a_killed_pull__taken_over(engine: Engine) -> None:
    _ehr(lambda _: (200, {}, _bundle([])))
    _hold_lease(engine, f"{socket.gethostname()}:{_ended_pid()}:pull")
    assert not _puller(engine).pull(TENANT).failed


def _hold_lease(engine: Engine, owner: str) -> None:
    until = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    with write_transaction(engine) as conn:
        conn.execute(
            sync_state.insert().values(
                tenant=TENANT,
                name=LEASE_NAME,
                value=orjson.dumps({"owner": owner, "until": until}).decode(),
                updated_at=datetime.now(UTC),
            )
        )


def _ended_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@responses.activate
def test_pull__history__deletion_tombstones_unless_a_newer_version_follows(
    engine: Engine,
) -> None:
    with write_transaction(engine) as conn:
        first, second = conn.execute(
            select(resources.c.pk).where(resources.c.resource_type == "Observation").limit(2)
        ).scalars()
        conn.execute(
            update(resources).where(resources.c.pk == first).values(ehr_id="o1", ehr_version="1")
        )
        conn.execute(
            update(resources).where(resources.c.pk == second).values(ehr_id="o2", ehr_version="1")
        )
    recreated = {
        "resourceType": "Observation",
        "id": "o2",
        "meta": {"versionId": "3", "lastUpdated": _stamp(3)},
        "status": "final",
        "code": {"text": "x"},
    }
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "meta": {"lastUpdated": "2026-11-25T10:00:00.000+00:00"},
        "entry": [  # newest first
            {"resource": recreated, "request": {"method": "PUT", "url": "Observation/o2"}},
            {"request": {"method": "DELETE", "url": "Observation/o2/_history/2"}},
            {"request": {"method": "DELETE", "url": "Observation/o1/_history/2"}},
        ],
    }
    responses.add(responses.GET, f"{BASE}/metadata", json=_history_capability("Observation"))
    responses.add(
        responses.GET, re.compile(rf"{re.escape(BASE)}/Observation/_history.*"), json=history
    )
    responses.add_callback(
        responses.GET,
        re.compile(rf"{re.escape(BASE)}/[A-Za-z]+(\?.*)?$"),
        lambda _: (200, {}, _bundle([])),
    )
    puller = Puller(engine, FhirClient(BASE), owner="unit", options=PullOptions())

    summary = puller.pull(TENANT)

    assert summary.counts[Outcome.DELETED] == 1
    with engine.connect() as conn:
        found = conn.execute(
            select(resources.c.ehr_id, resources.c.deleted).where(
                resources.c.pk.in_([first, second])
            )
        )
        deleted = {ehr_id: gone for ehr_id, gone in found}
    assert deleted == {"o1": True, "o2": False}


def _history_capability(resource_type: str) -> JsonObject:
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "resource": [{"type": resource_type, "interaction": [{"code": "history-type"}]}],
            }
        ],
    }


@responses.activate
def test_pull__stop_set_mid_pull__ends_after_the_page_and_resumes_there(engine: Engine) -> None:
    page = _bundle([_statement("s1", _stamp(1))], next_url=f"{BASE}/page2")
    _ehr(lambda _: (200, {}, page))
    responses.add(responses.GET, f"{BASE}/page2", body=_bundle([_statement("s2", _stamp(2))]))
    puller = _puller(engine, batch_versions=1)  # each page its own transaction
    puller.progress = lambda s: puller.stop.set() if s.counts[Outcome.IMPORTED] else None

    with pytest.raises(PullStopped):
        puller.pull(TENANT)

    run = _state(engine, "pull/MedicationStatement")["run"]
    assert isinstance(run, dict)
    assert run["after"] == "2026-11-24T09:01:00.000+00:00"
    summary = _puller(engine).pull(TENANT)
    assert summary.counts[Outcome.IMPORTED] == 1, "the second statement, and only it"
