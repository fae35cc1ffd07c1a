"""The alert topic fires when an alert starts or stops standing, never on a change that keeps
it standing or keeps it ended; read against the versions the store really holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from adapter.store.accept import Submission, accept
from adapter.store.engine import write_transaction
from adapter.store.subscription_events import Pulled, on_pulled
from adapter.store.subscription_topics import ALERT, ENCOUNTER, Change, fires
from adapter.store.subscriptions import Stored
from mappings.common import identity
from mappings.common.builders import resource
from mappings.context import MappingContext
from mappings.jsontypes import Resource
from tests.subscription_store import queued_events, subscribe

CTX = MappingContext()
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _flag(status: str, text: str = "fall risk") -> Resource:
    out = resource(identity.identity(CTX, "Flag", "alert", "A-1"), CTX)
    out["status"] = status
    out["code"] = {"text": text}
    return out


def _patient() -> Resource:
    return resource(identity.patient(CTX, "MRN-1"), CTX)


def _send(engine: Engine, tenant: str, *mapped: Resource, step: int = 0) -> None:
    sub = Submission(tenant, "encounter", "E-1", "MRN-1", "encounter:E-1", b"{}")
    with write_transaction(engine) as conn:
        accept(conn, sub, list(mapped), CTX, T0 + timedelta(minutes=step))


def _alert_actions(engine: Engine, sub: Stored) -> list[tuple[str | None, int | None]]:
    return [(e.action, e.focus_version) for e in queued_events(engine, sub)]


def test_alert__raised_ended_raised_again__one_event_each(engine: Engine, tenant: str) -> None:
    sub = subscribe(engine, tenant, ALERT)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), _flag("inactive"), step=1)
    _send(engine, tenant, _patient(), _flag("active"), step=2)
    assert _alert_actions(engine, sub) == [("create", 1), ("update", 2), ("update", 3)]


def test_alert__edits_that_keep_it_ended__no_event(engine: Engine, tenant: str) -> None:
    sub = subscribe(engine, tenant, ALERT)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), _flag("inactive"), step=1)
    _send(engine, tenant, _patient(), _flag("inactive", "fall risk, reviewed"), step=2)
    _send(engine, tenant, _patient(), _flag("entered-in-error", "fall risk, reviewed"), step=3)
    assert _alert_actions(engine, sub) == [("create", 1), ("update", 2)]


def test_alert__edit_that_keeps_it_standing__no_event(engine: Engine, tenant: str) -> None:
    sub = subscribe(engine, tenant, ALERT)
    encounters = subscribe(engine, tenant, ENCOUNTER)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), _flag("active", "fall risk, high"), step=1)
    assert _alert_actions(engine, sub) == [("create", 1)]
    assert queued_events(engine, encounters) == []  # the topics see only their types


def test_alert__created_already_ended__no_event(engine: Engine, tenant: str) -> None:
    sub = subscribe(engine, tenant, ALERT)
    _send(engine, tenant, _patient(), _flag("inactive"))
    assert queued_events(engine, sub) == []


def test_alert__deleted_while_standing__an_event__deleted_once_ended__none(
    engine: Engine, tenant: str
) -> None:
    sub = subscribe(engine, tenant, ALERT)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), step=1)  # the document no longer carries it
    assert _alert_actions(engine, sub) == [("create", 1), ("delete", 2)]
    _send(engine, tenant, _patient(), _flag("inactive"), step=2)  # back, but ended
    _send(engine, tenant, _patient(), step=3)
    assert _alert_actions(engine, sub) == [("create", 1), ("delete", 2)]


def test_alert__ehr_edit_of_an_ended_flag__none__ehr_reopening_it__one(
    engine: Engine, tenant: str
) -> None:
    sub = subscribe(engine, tenant, ALERT)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), _flag("inactive"), step=1)
    key = f"Flag/{queued_events(engine, sub)[0].focus_id}"
    # As the pull reports an EHR edit it wrote as version 3 (version 2 is the ended one).
    with write_transaction(engine) as conn:
        on_pulled(conn, tenant, [Pulled(key, 3, "update", "MRN-1", "inactive")], T0)
    assert _alert_actions(engine, sub) == [("create", 1), ("update", 2)]
    with write_transaction(engine) as conn:
        on_pulled(conn, tenant, [Pulled(key, 3, "update", "MRN-1", "active")], T0)
    assert _alert_actions(engine, sub) == [("create", 1), ("update", 2), ("update", 3)]


def test_alert__another_tenants_flag__not_read_nor_raised(engine: Engine, tenant: str) -> None:
    mine = subscribe(engine, tenant, ALERT)
    theirs = subscribe(engine, f"{tenant}-other", ALERT)
    _send(engine, tenant, _patient(), _flag("active"))
    _send(engine, tenant, _patient(), _flag("inactive"), step=1)
    assert len(queued_events(engine, mine)) == 2
    assert queued_events(engine, theirs) == []


def test_fires__a_version_before_that_cannot_be_read__counts_as_standing() -> None:
    ended = Change("ehr", "Flag", "f", 2, "update", None, "inactive", was_standing=True)
    assert fires(ALERT, ended)
    assert not fires(ALERT, Change("ehr", "Flag", "f", 2, "update", None, "active", True))
