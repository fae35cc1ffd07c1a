"""Per-record submissions: one record sent alone, as it happens, to an encounter sent before.

    POST /clinic/intake-screenings    one IntakeScreening
    POST /clinic/infusions            one InfusionProcedure
    POST /clinic/vitals               one VitalsObservation
    POST /clinic/medication-reviews   one MedicationReview

Each body is the record plus `encounter_id` and `patient_mrn`. The routes behave as
`POST /clinic/encounters` does (scope `clinic/encounters.write`, media type, body limit,
`Idempotency-Key`, problem details, 201/200 with the same receipt) and hand the bytes to
`ingest_record`, which adds three refusals: 409 naming `patient_mrn` or `encounter_id` when
the clinic has not sent that patient's encounter yet, 409 naming `encounter_id` and its id
when that encounter was sent for another patient, and 422 naming `administered_by`,
`monitored_by` or `reviewed_by` when it names a provider the clinic never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapter.api.auth.callers import Caller
from adapter.api.clinic import idempotency
from adapter.api.clinic.encounters import (
    is_undecodable,
    log_id_conflict,
    receipt,
    require_json,
    response_for,
)
from adapter.api.clinic.idempotency import Answer
from adapter.api.deps import Clock, ClockDep, EncounterWriter, EngineDep, SettingsDep, StoreReady
from adapter.api.openapi.bodies import contract_body
from adapter.config import Settings
from adapter.errors import (
    EncounterNotSent,
    IdConflict,
    InvalidDocument,
    MalformedDocument,
    StoreUnavailable,
)
from adapter.ingest import ingest_record
from adapter.runtime import mapping_context
from adapter.store.engine import Engine, StoreError
from mappings import RECORD_KINDS
from mappings.context import MappingContext
from mappings.errors import ContractViolation

log = logging.getLogger(__name__)
router = APIRouter(prefix="/clinic", tags=["clinic"])


def _endpoint(kind: str) -> Callable[..., Awaitable[Response]]:
    """The POST endpoint of one record kind: all four differ only in the kind."""

    async def post_record(
        request: Request,
        caller: EncounterWriter,
        _: StoreReady,
        settings: SettingsDep,
        engine: EngineDep,
        clock: ClockDep,
    ) -> Response:
        return await _post_record(kind, request, caller, settings, engine, clock)

    post_record.__name__ = f"post_{kind.replace('-', '_')}"
    return post_record


for _kind in RECORD_KINDS.values():
    router.add_api_route(
        f"/{_kind.collection}",
        _endpoint(_kind.name),
        methods=["POST"],
        status_code=201,
        openapi_extra=contract_body(_kind.model),
    )


async def _post_record(
    kind: str,
    request: Request,
    caller: Caller,
    settings: Settings,
    engine: Engine,
    clock: Clock,
) -> Response:
    require_json(request.headers.get("content-type"))
    key = idempotency.parse_key(request.headers.get("idempotency-key"))
    body = await request.body()
    ctx = mapping_context(settings, caller.tenant)
    ttl = timedelta(hours=settings.idempotency_ttl_hours)

    def accept() -> Answer:
        return _submit(kind, engine, body, ctx, clock, caller)

    def accept_once() -> Answer:
        if key is None:
            return accept()
        return idempotency.run_once(engine, caller.tenant, key, body, clock(), ttl, accept)

    try:
        answer = await run_in_threadpool(accept_once)
    except StoreError as exc:
        log.warning("clinic API: store error %s on a %s record", type(exc).__name__, kind)
        raise StoreUnavailable("the store could not take the record; retry shortly") from exc
    if answer.is_replay:
        log.info("clinic API: replayed an answer for key %s", caller.key_id)
    return response_for(answer)


def _submit(
    kind: str, engine: Engine, body: bytes, ctx: MappingContext, clock: Clock, caller: Caller
) -> Answer:
    try:
        ingested = ingest_record(engine, kind, body, ctx, clock=clock)
    except ContractViolation as violation:
        log.info(
            "clinic API: key %s sent an invalid %s record, %d field errors",
            caller.key_id,
            kind,
            len(violation.errors),
        )
        refusal = MalformedDocument if is_undecodable(violation) else InvalidDocument
        raise refusal(violation.errors) from violation
    except EncounterNotSent as refused:
        log.info(
            "clinic API: key %s sent a %s record, %s unknown", caller.key_id, kind, refused.field
        )
        raise
    except IdConflict as refused:
        log_id_conflict(caller, f"a {kind} record", refused)
        raise
    result = ingested.result
    log.info(
        "clinic API: submission %d (%s) from key %s (tenant %s): %d created, %d updated, "
        "%d unchanged, %d deleted, outbox %s",
        result.submission_id,
        kind,
        caller.key_id,
        caller.tenant,
        len(result.created),
        len(result.updated),
        len(result.unchanged),
        len(result.deleted),
        result.outbox_id,
    )
    return Answer(201 if ingested.first_receipt else 200, orjson.dumps(receipt(ingested)))
