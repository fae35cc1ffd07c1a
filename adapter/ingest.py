"""Accepting a clinic document: validate, map, store and enqueue, in one place.

The HTTP API and `adapter ingest` both call `ingest_encounter`, so a record loaded from a
clinic's history goes through exactly the checks and the transaction a live one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from adapter.store.accept import AcceptResult, Submission, accept
from adapter.store.engine import write_transaction
from mappings.context import MappingContext
from mappings.contract import parse_submission
from mappings.submission import map_submission

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Ingested:
    encounter_id: str
    result: AcceptResult

    @property
    def first_receipt(self) -> bool:
        return bool(self.result.created)


def utc_now() -> datetime:
    return datetime.now(UTC)


def ingest_encounter(
    engine: Engine,
    document: bytes,
    ctx: MappingContext,
    *,
    clock: Clock = utc_now,
) -> Ingested:
    """Accept one encounter submission; raises `ContractViolation` naming every bad field.

    Nothing is written unless the whole document is valid and mapped; then its resources
    and its outbox entry are written in one transaction.
    """
    now = clock()
    sub = parse_submission(document, today=_today(now))
    mapped = map_submission(sub, ctx)
    doc = Submission(
        tenant=ctx.tenant,
        kind="encounter",
        encounter_key=sub.encounter_id,
        patient_key=sub.patient.mrn,
        scope_key=f"encounter:{sub.encounter_id}",
        document=document,
    )
    with write_transaction(engine) as conn:
        result = accept(conn, doc, mapped, ctx, now)
    return Ingested(sub.encounter_id, result)


def _today(now: datetime) -> date:
    return now.date()
