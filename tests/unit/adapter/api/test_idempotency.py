"""`Idempotency-Key`: a retry replays the first answer; another body under the key is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from adapter.api.clinic.idempotency import parse_key
from adapter.errors import IdempotencyKeyReused, InvalidIdempotencyKey
from adapter.store import idempotency
from adapter.store.engine import write_transaction
from adapter.store.idempotency import STALE_AFTER
from adapter.store.schema import idempotency_keys, submissions
from tests.unit.adapter.api.conftest import (
    WRITER_B,
    example,
    example_bytes,
    post_encounter,
)

KEY = {"Idempotency-Key": "9f1c6c1e-3b7e-4a53-b7a4-0c9b0d4f0e11"}
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> FakeClock:
    fake = FakeClock()
    app.state.clock = fake
    return fake


def _submission_count(app: FastAPI) -> int:
    with app.state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(submissions)).scalar_one())


def test_retry__same_key_and_body__replays_status_and_body(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    first = post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert _submission_count(app) == 1


def test_retry__quoted_key__same_key_as_bare(client: TestClient, clock: FakeClock) -> None:
    post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    quoted = {"Idempotency-Key": f'"{KEY["Idempotency-Key"]}"'}
    again = post_encounter(client, example_bytes("stopped-infusion"), headers=quoted)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_retry__same_key_other_body__422_problem_and_nothing_stored(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    reply = post_encounter(client, example_bytes("esketamine-session"), headers=KEY)
    assert reply.status_code == 422
    assert reply.json()["type"].endswith(":idempotency-key-reused")
    assert _submission_count(app) == 1


def test_key__expired__ignored_and_the_request_runs_again(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    clock.now += timedelta(hours=24, seconds=1)
    reply = post_encounter(client, example_bytes("esketamine-session"), headers=KEY)
    assert reply.status_code == 201
    assert "Idempotent-Replayed" not in reply.headers
    with app.state.engine.connect() as conn:
        rows = conn.execute(select(idempotency_keys.c.created_at)).all()
    assert len(rows) == 1  # the expired one was purged


def test_key__just_before_expiry__still_replayed(client: TestClient, clock: FakeClock) -> None:
    post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    clock.now += timedelta(hours=23, minutes=59)
    reply = post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    assert reply.headers["Idempotent-Replayed"] == "true"


def test_key__refused_document__not_stored_so_a_corrected_retry_runs(
    client: TestClient, clock: FakeClock
) -> None:
    broken = example("esketamine-session")
    broken["status"] = "done"
    assert post_encounter(client, broken, headers=KEY).status_code == 422
    fixed = post_encounter(client, example_bytes("esketamine-session"), headers=KEY)
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed.headers


def test_key__other_tenant__independent(client: TestClient, clock: FakeClock) -> None:
    post_encounter(client, example_bytes("stopped-infusion"), headers=KEY)
    reply = post_encounter(client, example_bytes("esketamine-session"), WRITER_B, headers=KEY)
    assert reply.status_code == 201
    assert "Idempotent-Replayed" not in reply.headers


def _reserve(app: FastAPI, at: datetime, body: bytes) -> None:
    """A reservation left by a request still running (or by a process that died)."""
    with write_transaction(app.state.engine) as conn:
        conn.execute(
            insert(idempotency_keys).values(
                tenant="clinic-a",
                key=KEY["Idempotency-Key"],
                body_sha256=hashlib.sha256(body).hexdigest(),
                created_at=at,
            )
        )


def test_key__request_in_progress__409_retry_after(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    body = example_bytes("stopped-infusion")
    _reserve(app, T0, body)
    reply = post_encounter(client, body, headers=KEY)
    assert reply.status_code == 409
    assert reply.headers["Retry-After"] == "1"
    assert _submission_count(app) == 0


def test_key__stale_reservation__taken_over_and_answered(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    body = example_bytes("stopped-infusion")
    _reserve(app, T0 - STALE_AFTER - timedelta(seconds=1), body)
    reply = post_encounter(client, body, headers=KEY)
    assert reply.status_code == 201
    replay = post_encounter(client, body, headers=KEY)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert json.loads(replay.content) == reply.json()


def test_key__invalid_header__400_problem(client: TestClient) -> None:
    reply = post_encounter(
        client, example_bytes("stopped-infusion"), headers={"Idempotency-Key": "x" * 256}
    )
    assert reply.status_code == 400
    assert reply.json()["type"].endswith(":invalid-idempotency-key")


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (None, None),
        ("abc", "abc"),
        (' "abc" ', "abc"),
        ('"a b "', "a b "),
        ('a"', 'a"'),
        ("a b", "a b"),
        ("x" * 255, "x" * 255),
    ],
)
def test_parse_key__accepted_forms(header: str | None, key: str | None) -> None:
    assert parse_key(header) == key


@pytest.mark.parametrize("header", ["", '""', '" a"', '"abc', "   ", "x" * 256, "é", "a\tb"])
def test_parse_key__refused_forms(header: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        parse_key(header)


def test_begin__lost_the_insert_race__sees_the_winners_reservation(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two first uses can both miss the row; the unique key stops the second,
    which then looks again and finds the winner's reservation."""
    _reserve(app, T0, b"the winner's body")
    real_begin = idempotency._begin
    calls: list[object] = []

    def losing_once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO idempotency_keys", {}, Exception("duplicate key"))
        return real_begin(*args)

    monkeypatch.setattr(idempotency, "_begin", losing_once)
    with pytest.raises(IdempotencyKeyReused):
        idempotency.begin(
            app.state.engine, "clinic-a", KEY["Idempotency-Key"], "ours", T0, timedelta(hours=1)
        )
    assert len(calls) == 2
