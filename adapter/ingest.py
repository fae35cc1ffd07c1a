"""Accepting a clinic document: validate, map, check ids, store and enqueue, in one place.

The HTTP API and `adapter ingest` both call `ingest_encounter`, so a record loaded from a
clinic's history goes through exactly the checks and the transaction a live one does.

Mapping uses the tenant's context as the store fixes it (`adapter.store.tenants`: its
namespace, and the encounter's records stored under the older id scheme), and the
document's ids must pass the contract's identity rules (`adapter.identity_rules`) in the
transaction that accepts it: a refused document changes nothing. What the tenant's protocol
forbids is refused (422) before anything is read; the patient's Flags are settled in the
accepting transaction (`adapter.clinical_alerts`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from adapter import identity_rules
from adapter.clinical_alerts import refuse_forbidden, settle_flags
from adapter.config import DEFAULT_MAX_READINGS_PER_DOCUMENT
from adapter.errors import EncounterNotSent, IdConflict
from adapter.store.accept import AcceptResult, Submission, accept
from adapter.store.encounter_rows import CurrentRow, current_rows
from adapter.store.engine import Connection, Engine, write_transaction
from adapter.store.tenants import encounter_context, pin
from mappings import Record, map_submission, parse_submission, record_kind
from mappings.claims import Claim, encounter_claims, record_claims
from mappings.common import identity
from mappings.common.builders import resource
from mappings.common.lookup import identifier_value, obj, str_field
from mappings.common.people import unmap_provider
from mappings.common.provenance import map_provenance
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import (
    EncounterSubmission,
    InfusionProcedure,
    Provider,
)
from mappings.errors import ContractViolation, FieldError
from mappings.infusion import unmap_infusion
from mappings.jsontypes import Resource

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
    max_readings: int = DEFAULT_MAX_READINGS_PER_DOCUMENT,
) -> Ingested:
    """Accept one encounter submission; raises `ContractViolation` naming every bad field
    (more than `max_readings` vital-sign readings included), or `IdConflict` (409) naming
    the ids the identity rules refuse.

    Nothing is written unless the whole document is valid, mapped and its ids allowed; then
    its resources and its outbox entry are written in one transaction.
    """
    now = clock()
    sub = parse_submission(document, today=today(now))
    check_readings(sub, max_readings)
    refuse_forbidden(sub.infusion, ctx, "infusion.")
    with engine.connect() as conn:
        ctx = encounter_context(conn, ctx, sub.encounter_id)
    mapped = map_submission(sub, ctx)
    doc = Submission(
        tenant=ctx.tenant,
        kind="encounter",
        encounter_key=sub.encounter_id,
        patient_key=sub.patient.mrn,
        scope_key=f"encounter:{sub.encounter_id}",
        document=document,
    )
    claims = encounter_claims(sub, ctx)
    with write_transaction(engine) as conn:
        result = _accept_checked(conn, doc, mapped, ctx, claims, "patient.mrn", now)
    return Ingested(sub.encounter_id, result)


def check_readings(sub: EncounterSubmission, max_readings: int) -> None:
    """Refuse a document with more vital-sign readings than one document may carry: its
    cost grows with them (about three resources and fourteen search-index rows a reading),
    and a clinic sends the rest as records of their own (`POST /clinic/vitals`)."""
    count = len(sub.vitals or ())
    if count > max_readings:
        message = (
            f"at most {max_readings} readings in one document "
            f"(ADAPTER_MAX_READINGS_PER_DOCUMENT); this one has {count}: send the others "
            "one at a time with POST /clinic/vitals"
        )
        raise ContractViolation([FieldError("vitals", message)])


def today(now: datetime) -> date:
    """The date a birth date may not be after: the clock's (UTC) date, as everywhere."""
    return now.astimezone(UTC).date()


def _accept_checked(
    conn: Connection,
    doc: Submission,
    mapped: Sequence[Resource],
    ctx: MappingContext,
    claims: Sequence[Claim],
    mrn_field: str,
    now: datetime,
) -> AcceptResult:
    """`accept`, once the identity rules allow the document's ids (else `IdConflict`), its
    Flags and the patient's stored ones settled (`adapter.clinical_alerts`)."""
    refused = identity_rules.refusals(conn, ctx, claims, mapped, mrn_field=mrn_field)
    if refused:
        raise IdConflict(refused)
    pin(conn, ctx, now)
    identity_rules.claim(conn, ctx, mapped, now)
    settled = settle_flags(conn, ctx, doc.patient_key, mapped)
    return accept(conn, doc, settled.document, ctx, now, settled.ended)


# ---------------------------------------------------------------- one record at a time

# What the stored infusion of an encounter is rebuilt from (see `_stored_infusion`).
_INFUSION_TYPES = (
    "Encounter",
    "Procedure",
    "MedicationRequest",
    "MedicationAdministration",
    "Medication",
    "AdverseEvent",
)


@dataclass(frozen=True)
class _StoredEncounter:
    """What the store knows of the encounter a record joins."""

    start: datetime | None
    provider_ids: frozenset[str]
    providers: tuple[Provider, ...]
    infusion: InfusionProcedure | None


def ingest_record(
    engine: Engine,
    kind: str,
    document: bytes,
    ctx: MappingContext,
    *,
    clock: Clock = utc_now,
) -> Ingested:
    """Accept one record sent alone (`kind` names one of `mappings.RECORD_KINDS`).

    Raises `ContractViolation` naming every bad field (a provider the clinic never sent
    included), `EncounterNotSent` (409) when the store holds no Patient with its
    `patient_mrn` or no Encounter with its `encounter_id`, or `IdConflict` (409) when that
    encounter belongs to another patient (or another identity rule refuses an id). The
    record's resources and a Provenance of their own are accepted under the scope
    `<kind>:<encounter_id>:<record id>`, so a resend replaces that record's resources
    only: the encounter's other records are neither updated nor deleted.
    """
    now = clock()
    record_type = record_kind(kind)
    # The structure first: a malformed record is 422 before any look-up.
    rec = record_type.parse(document)
    with engine.connect() as conn:
        ctx = encounter_context(conn, ctx, rec.encounter_id)
        stored = _stored_encounter(conn, ctx, rec.encounter_id, rec.patient_mrn)
    rec = record_type.parse(document, known_provider_ids=stored.provider_ids)
    refuse_forbidden(rec.infusion, ctx, "")
    infusion = rec.infusion if rec.infusion is not None else stored.infusion
    scope = EncounterScope(rec.encounter_id, rec.patient_mrn, stored.providers, infusion)
    mapped = rec.map(scope, ctx)
    mapped.append(_record_provenance(rec, mapped, stored.start, ctx))
    doc = Submission(
        tenant=ctx.tenant,
        kind=kind,
        encounter_key=rec.encounter_id,
        patient_key=rec.patient_mrn,
        scope_key=f"{kind}:{rec.encounter_id}:{rec.record_id}",
        document=document,
    )
    claims = record_claims(rec, ctx)
    with write_transaction(engine) as conn:
        result = _accept_checked(conn, doc, mapped, ctx, claims, "patient_mrn", now)
    return Ingested(rec.encounter_id, result)


def _record_provenance(
    rec: Record,
    targets: Sequence[Resource],
    encounter_start: datetime | None,
    ctx: MappingContext,
) -> Resource:
    """The record's own Provenance: never the encounter's, which targets the whole visit.

    `recorded` is the newest time the record (or its encounter's start) carries, not the
    clock, so an identical resend stays byte-identical.
    """
    times = [*rec.times, *([encounter_start] if encounter_start is not None else [])]
    recorded = max(times) if times else datetime(1970, 1, 1, tzinfo=UTC)
    out = map_provenance(rec.encounter_id, targets, recorded, rec.author, ctx)
    parts = (rec.encounter_id, rec.kind.name, rec.record_id)
    own = identity.identity(ctx, "Provenance", "submission", *parts)
    head = resource(own, ctx)
    out["id"] = head["id"]
    out["extension"] = head["extension"]
    return out


def _stored_encounter(
    conn: Connection, ctx: MappingContext, encounter_id: str, mrn: str
) -> _StoredEncounter:
    patient = identity.patient(ctx, mrn)
    if not current_rows(conn, ctx.tenant, ("Patient",), patient.system, patient.value):
        raise EncounterNotSent(
            "patient_mrn",
            "no patient with this patient_mrn was sent by this clinic: "
            "send the encounter first (POST /clinic/encounters)",
        )
    encounter = identity.encounter(ctx, encounter_id)
    rows = current_rows(conn, ctx.tenant, ("Encounter",), encounter.system, encounter.value)
    bound = identity_rules.encounter_patient(conn, ctx, encounter_id)
    if bound is not None and bound != mrn:
        raise IdConflict([identity_rules.moved_refusal(encounter_id, "patient_mrn")])
    if not rows:
        raise EncounterNotSent(
            "encounter_id",
            "no encounter with this encounter_id was sent by this clinic: "
            "send the encounter first (POST /clinic/encounters)",
        )
    staff = [_content(r) for r in current_rows(conn, ctx.tenant, _STAFF_TYPES)]
    provider_system = identity.practitioner(ctx, "-").system
    ids = frozenset(
        value
        for res in staff
        if res.get("resourceType") == "Practitioner"
        and (value := identifier_value(res, provider_system)) is not None
    )
    return _StoredEncounter(
        start=_start_of(_content(rows[0])),
        provider_ids=ids,
        providers=_providers(staff, ids, ctx),
        infusion=_stored_infusion(conn, ctx, encounter_id, mrn),
    )


_STAFF_TYPES = ("Practitioner", "PractitionerRole")


def _content(row: CurrentRow) -> Resource:
    loaded = json.loads(row.content)
    return loaded if isinstance(loaded, dict) else {}


def _start_of(encounter: Resource) -> datetime | None:
    start = str_field(obj(encounter.get("period")), "start")
    if start is None:
        return None
    try:
        parsed = datetime.fromisoformat(start)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _providers(
    staff: Sequence[Resource], ids: Collection[str], ctx: MappingContext
) -> tuple[Provider, ...]:
    """The stored providers as the contract models them, so a record names them as its
    encounter does (a provider the store cannot rebuild is referred to by id only)."""
    found: list[Provider] = []
    for provider_id in sorted(ids):
        try:
            provider = unmap_provider(staff, provider_id, ctx)
        except ValueError:  # pydantic's ValidationError included
            continue
        if provider is not None:
            found.append(provider)
    return tuple(found)


def _stored_infusion(
    conn: Connection, ctx: MappingContext, encounter_id: str, mrn: str
) -> InfusionProcedure | None:
    """The encounter's stored infusion, which readings, alerts and interactions refer to."""
    rows = current_rows(conn, ctx.tenant, _INFUSION_TYPES, patient_key=mrn)
    try:
        return unmap_infusion([_content(r) for r in rows], EncounterScope(encounter_id, mrn), ctx)
    except ValueError:  # pydantic's ValidationError included: refer to no infusion
        return None
