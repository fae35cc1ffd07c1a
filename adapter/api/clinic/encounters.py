"""`POST /clinic/encounters`: a clinic submits one encounter document.

The route checks the caller, the media type and the `Idempotency-Key`, then hands the raw
bytes to `ingest_encounter` (validate, map, store, enqueue in one transaction) in a worker
thread. It answers 201 when the document created a resource (a first receipt, or a resend
adding records), else 200, with the submission's id, its status URL and the FHIR
references it created, updated, left unchanged or deleted. Refusals are problem details:
400 for a body that is not UTF-8 JSON at all, 422 naming every field that breaks the
contract (duplicate keys and NaN included), 409 naming each field whose id the contract's
identity rules refuse (an encounter sent for another patient, an id already in use in a
shared namespace: `adapter.identity_rules`), 415 for another media type.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapter.api.auth.callers import Caller
from adapter.api.clinic import idempotency
from adapter.api.clinic.answer_models import Receipt
from adapter.api.clinic.idempotency import Answer
from adapter.api.clinic.status import UNCHANGED, status_url
from adapter.api.deps import Clock, ClockDep, EncounterWriter, EngineDep, SettingsDep, StoreReady
from adapter.api.openapi.bodies import contract_body
from adapter.errors import (
    IdConflict,
    InvalidDocument,
    MalformedDocument,
    StoreUnavailable,
    UnsupportedMediaType,
)
from adapter.ingest import Ingested, ingest_encounter
from adapter.runtime import mapping_context
from adapter.store.engine import Engine, StoreError
from mappings.context import MappingContext
from mappings.contract.models import EncounterSubmission
from mappings.contract.parse import MalformedJson
from mappings.errors import ContractViolation

log = logging.getLogger(__name__)
router = APIRouter(prefix="/clinic", tags=["clinic"])

JSON_MEDIA_TYPE = "application/json"
# What the contract parser chains to a refusal when the bytes are not sound UTF-8 JSON
# (a 400, naming the field where it can); a sound document breaking the contract is a 422.
_UNDECODABLE = (UnicodeDecodeError, json.JSONDecodeError, RecursionError, MalformedJson)


@router.post("/encounters", status_code=201, openapi_extra=contract_body(EncounterSubmission))
async def post_encounter(
    request: Request,
    caller: EncounterWriter,
    _: StoreReady,
    settings: SettingsDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    require_json(request.headers.get("content-type"))
    key = idempotency.parse_key(request.headers.get("idempotency-key"))
    body = await request.body()
    ctx = mapping_context(settings, caller.tenant)
    ttl = timedelta(hours=settings.idempotency_ttl_hours)

    def accept() -> Answer:
        return _submit(engine, body, ctx, clock, caller, settings.max_readings_per_document)

    def accept_once() -> Answer:
        if key is None:
            return accept()
        return idempotency.run_once(engine, caller.tenant, key, body, clock(), ttl, accept)

    try:
        answer = await run_in_threadpool(accept_once)
    except StoreError as exc:
        log.warning("clinic API: store error %s on an encounter", type(exc).__name__)
        raise StoreUnavailable("the store could not take the document; retry shortly") from exc
    if answer.is_replay:
        log.info("clinic API: replayed an answer for key %s", caller.key_id)
    return response_for(answer)


def require_json(content_type: str | None) -> None:
    """Refuse (415) anything but `application/json`, optionally with `charset=utf-8`."""
    media_type, *params = (part.strip().lower() for part in (content_type or "").split(";"))
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    if media_type != JSON_MEDIA_TYPE or any(c != "utf-8" for c in charsets):
        raise UnsupportedMediaType("send the encounter as application/json (UTF-8)")


def _submit(
    engine: Engine,
    body: bytes,
    ctx: MappingContext,
    clock: Clock,
    caller: Caller,
    max_readings: int,
) -> Answer:
    try:
        ingested = ingest_encounter(engine, body, ctx, clock=clock, max_readings=max_readings)
    except ContractViolation as violation:
        log.info(
            "clinic API: key %s sent an invalid encounter, %d field errors",
            caller.key_id,
            len(violation.errors),
        )
        refusal = MalformedDocument if is_undecodable(violation) else InvalidDocument
        raise refusal(violation.errors) from violation
    except IdConflict as refused:
        log_id_conflict(caller, "an encounter", refused)
        raise
    result = ingested.result
    log.info(
        "clinic API: submission %d from key %s (tenant %s): %d created, %d updated, "
        "%d unchanged, %d deleted, outbox %s",
        result.submission_id,
        caller.key_id,
        caller.tenant,
        len(result.created),
        len(result.updated),
        len(result.unchanged),
        len(result.deleted),
        result.outbox_id,
    )
    return Answer(201 if ingested.first_receipt else 200, orjson.dumps(receipt(ingested)))


def log_id_conflict(caller: Caller, what: str, refused: IdConflict) -> None:
    # Field paths only: the ids themselves may be MRNs.
    fields = ", ".join(r.field for r in refused.refusals)
    log.info("clinic API: key %s sent %s with refused ids (%s)", caller.key_id, what, fields)


def is_undecodable(violation: ContractViolation) -> bool:
    return isinstance(violation.__cause__, _UNDECODABLE)


def receipt(ingested: Ingested) -> dict[str, object]:
    """The answer's body: the submission, its status link and the FHIR references touched
    (the `Receipt` model, which `/openapi.json` publishes, checks it)."""
    result = ingested.result
    return Receipt(
        submission_id=result.public_id,
        encounter_id=ingested.encounter_id,
        status=UNCHANGED if result.outbox_id is None else "stored",
        status_url=status_url(result.public_id),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        deleted=result.deleted,
    ).model_dump()


def response_for(answer: Answer) -> Response:
    """The HTTP response for a stored or replayed answer, with its Location header."""
    headers = {"Location": str(orjson.loads(answer.body)["status_url"])}
    if answer.is_replay:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        answer.body, status_code=answer.status, headers=headers, media_type=JSON_MEDIA_TYPE
    )
