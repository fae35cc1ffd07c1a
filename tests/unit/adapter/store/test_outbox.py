"""Claiming outbox work: leases, per-patient order without head-of-line blocking, replay."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from adapter.store import outbox as box
from adapter.store.accept import carries_shared
from adapter.store.engine import write_transaction
from adapter.store.schema import outbox, resources, submissions

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


def _enqueue(engine: Engine, tenant: str, patient: str, keys: list[str]) -> int:
    with write_transaction(engine) as conn:
        sub = conn.execute(
            insert(submissions)
            .values(
                tenant=tenant,
                kind="encounter",
                encounter_key=f"E-{patient}",
                patient_key=patient,
                content_hash="0" * 64,
                received_at=T0,
                changed_count=len(keys),
            )
            .returning(submissions.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                insert(outbox)
                .values(
                    tenant=tenant,
                    patient_key=patient,
                    encounter_key=f"E-{patient}",
                    submission_id=sub,
                    resource_keys=keys,
                    carries_shared=carries_shared(keys),
                    state=box.PENDING,
                    attempts=0,
                    available_at=T0,
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(outbox.c.id)
            ).scalar_one()
        )


def _claim(engine: Engine, tenant: str, owner: str = "w1", at: datetime = T0) -> list[box.Entry]:
    with write_transaction(engine) as conn:
        return box.claim(conn, owner, at, LEASE, tenant=tenant)


def _settle(engine: Engine, entry: box.Entry, state: str, owner: str = "w1") -> bool:
    with write_transaction(engine) as conn:
        return box.settle(conn, entry, owner, state, T0)


def test_claim__two_patients__both_claimed_in_id_order(engine: Engine, tenant: str) -> None:
    a = _enqueue(engine, tenant, "P1", ["Patient/a", "Observation/1"])
    b = _enqueue(engine, tenant, "P2", ["Patient/b", "Observation/2"])
    assert [e.id for e in _claim(engine, tenant)] == [a, b]
    assert _claim(engine, tenant) == []  # leased: nobody else gets them


def test_claim__later_entry_of_same_patient__waits_until_first_is_done(
    engine: Engine, tenant: str
) -> None:
    first = _enqueue(engine, tenant, "P1", ["Patient/a", "Observation/1"])
    second = _enqueue(engine, tenant, "P1", ["Observation/2"])
    claimed = _claim(engine, tenant)
    assert [e.id for e in claimed] == [first]
    assert _settle(engine, claimed[0], box.DONE)
    assert [e.id for e in _claim(engine, tenant)] == [second]


def _store(engine: Engine, tenant: str, key: str, refers_to: str) -> None:
    kind, logical_id = key.split("/")
    content = f'{{"resourceType":"{kind}","subject":{{"reference":"{refers_to}"}}}}'
    with write_transaction(engine) as conn:
        conn.execute(
            insert(resources).values(
                tenant=tenant,
                resource_type=kind,
                logical_id=logical_id,
                identifier_system="urn:test",
                identifier_value=key,
                version=1,
                content_hash="0" * 64,
                content=content,
                last_updated=T0,
            )
        )


def test_claim__entry_referring_to_a_resource_still_on_its_way__waits_for_it(
    engine: Engine, tenant: str
) -> None:
    visit = _enqueue(engine, tenant, "P1", ["Encounter/e1", "Observation/1"])
    _store(engine, tenant, "Observation/2", refers_to="Encounter/e1")
    reading = _enqueue(engine, tenant, "P1", ["Observation/2"])  # added to that visit
    _store(engine, tenant, "Observation/3", refers_to="Encounter/e0")
    unrelated = _enqueue(engine, tenant, "P1", ["Observation/3"])  # an earlier visit's
    claimed = _claim(engine, tenant)
    assert [e.id for e in claimed] == [visit, unrelated]
    assert _settle(engine, claimed[0], box.DONE)
    assert [e.id for e in _claim(engine, tenant)] == [reading]


def test_claim__parked_entry__blocks_only_work_that_depends_on_it(
    engine: Engine, tenant: str
) -> None:
    poison = _enqueue(engine, tenant, "P1", ["Observation/1"])
    _enqueue(engine, tenant, "P1", ["Observation/1", "Observation/9"])  # depends on poison
    independent = _enqueue(engine, tenant, "P1", ["Observation/2"])
    other_patient = _enqueue(engine, tenant, "P2", ["Patient/b"])
    claimed = _claim(engine, tenant)
    assert [e.id for e in claimed] == [poison, independent, other_patient]
    assert _settle(engine, claimed[0], box.DEAD)
    for other in claimed[1:]:
        assert _settle(engine, other, box.DONE)
    assert _claim(engine, tenant, at=T0 + timedelta(hours=1)) == []  # same_resource waits
    with write_transaction(engine) as conn:
        assert box.replay(conn, [poison], T0) == 1
    assert [e.id for e in _claim(engine, tenant)] == [poison]


def test_claim__expired_lease__taken_again_and_old_owner_cannot_settle(
    engine: Engine, tenant: str
) -> None:
    _enqueue(engine, tenant, "P1", ["Observation/1"])
    (lost,) = _claim(engine, tenant, "w1")
    (again,) = _claim(engine, tenant, "w2", at=T0 + LEASE + timedelta(seconds=1))
    assert again.id == lost.id
    assert again.attempts == 2
    assert not _settle(engine, lost, box.DONE, owner="w1")
    assert _settle(engine, again, box.DONE, owner="w2")


def test_settle__retry__back_in_queue_at_the_given_time(engine: Engine, tenant: str) -> None:
    _enqueue(engine, tenant, "P1", ["Observation/1"])
    (entry,) = _claim(engine, tenant)
    later = T0 + timedelta(seconds=30)
    with write_transaction(engine) as conn:
        box.settle(conn, entry, "w1", box.PENDING, T0, status=503, retry_at=later)
    assert _claim(engine, tenant, at=T0 + timedelta(seconds=29)) == []
    assert [e.id for e in _claim(engine, tenant, at=later)] == [entry.id]


def test_replay__dead_entry__pending_again_with_attempts_reset(engine: Engine, tenant: str) -> None:
    _enqueue(engine, tenant, "P1", ["Observation/1"])
    (entry,) = _claim(engine, tenant)
    _settle(engine, entry, box.DEAD)
    with write_transaction(engine) as conn:
        assert box.counts(conn, tenant) == {box.DEAD: 1}
        assert box.replay(conn, [entry.id], T0) == 1
        assert box.counts(conn, tenant) == {box.PENDING: 1}
    assert [e.attempts for e in _claim(engine, tenant)] == [1]


def test_claim__two_workers_at_once__never_the_same_entry(engine: Engine, tenant: str) -> None:
    ids = {_enqueue(engine, tenant, f"P{i}", [f"Observation/{i}"]) for i in range(40)}
    got: dict[str, list[int]] = {"w1": [], "w2": []}

    def work(owner: str) -> None:
        while batch := _claim(engine, tenant, owner):
            got[owner].extend(e.id for e in batch)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got["w1"] + got["w2"]) == sorted(ids)


def test_claim__entry_creating_the_clinic__all_patients_wait_for_it(
    engine: Engine, tenant: str
) -> None:
    first = _enqueue(engine, tenant, "P1", ["Organization/o", "Patient/a", "Observation/1"])
    other = _enqueue(engine, tenant, "P2", ["Patient/b", "Observation/2"])
    claimed = _claim(engine, tenant)
    assert [e.id for e in claimed] == [first]
    assert _settle(engine, claimed[0], box.DONE)
    assert [e.id for e in _claim(engine, tenant)] == [other]


def test_waiting__each_reason__counted_apart(engine: Engine, tenant: str) -> None:
    parked = _enqueue(engine, tenant, "P1", ["Patient/a"])
    _enqueue(engine, tenant, "P1", ["Observation/1"])  # behind the parked one: held back
    _enqueue(engine, tenant, "P2", ["Patient/b"])
    _enqueue(engine, tenant, "P3", ["Patient/c"])
    first, _, other = _claim(engine, tenant)
    assert first.id == parked
    assert _settle(engine, first, box.DEAD)
    with write_transaction(engine) as conn:  # one retried later, one still with its worker
        box.settle(conn, other, "w1", box.PENDING, T0, retry_at=T0 + timedelta(seconds=30))
    with engine.connect() as conn:
        found = box.waiting(conn, T0 + timedelta(seconds=10), tenant)
    assert found == box.Waiting(
        backing_off=1,
        leased=1,
        held_back=1,
        dead=1,
        conflict=0,
        next_due=T0 + timedelta(seconds=30),
    )
