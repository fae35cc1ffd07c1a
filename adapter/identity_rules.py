"""The contract's identity rules ("Scope of ids"), checked against the store.

- An `encounter_id` belongs, from its first receipt, to one patient for good: a document
  naming it with another MRN would move the encounter and its records, and is refused.
- An id written for one tenant (its MRN, encounter, provider and record ids: every
  identifier we push) is never written for another (`adapter.store.owners`). With
  per-tenant namespaces two tenants' identifiers never meet; with a shared one this is
  what refuses tenant B the MRN tenant A sent first.

A refusal names the field and the id the caller sent (`mappings.claims` leads each
identifier back to its field), never anything of another tenant: not its name, not that
the id is another clinic's rather than taken. The document is refused whole: `refusals`
runs before anything is written, and `claim` (in the accepting transaction) records the
new ids only when nothing was refused. `adapter map` asks `refusals` too, read-only, so
the command line and the service give one verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapter.errors import IdConflict, IdRefusal
from adapter.store import owners
from adapter.store.encounter_rows import encounter_patient as stored_patient
from adapter.store.engine import Connection
from mappings.claims import Claim, claim_of
from mappings.common import identity
from mappings.common.bundle import resource_identity
from mappings.common.identity import Identity
from mappings.context import MappingContext
from mappings.jsontypes import Resource

MOVED = (
    "encounter {id} was first sent for another patient: an encounter belongs to one "
    "patient for good, so it cannot be sent with this {mrn_field}"
)
TAKEN = "the id {id} is already in use in this adapter's identifier namespace: use another id"
UNCLAIMED = "an identifier of this document is already taken: refused whole"


def refusals(
    conn: Connection,
    ctx: MappingContext,
    claims: Sequence[Claim],
    mapped: Sequence[Resource],
    *,
    mrn_field: str,
) -> list[IdRefusal]:
    """Every id of the document the rules refuse (none: it may be accepted)."""
    found = _moved(conn, ctx, claims, mrn_field)
    identities = [resource_identity(res, ctx) for res in mapped]
    foreign = owners.owned_elsewhere(conn, ctx.tenant, identities)
    return found + _taken(foreign, claims, ctx)


def claim(conn: Connection, ctx: MappingContext, mapped: Sequence[Resource], now: datetime) -> None:
    """Own the document's new identifiers, in the accepting transaction; refused whole
    (`IdConflict`) if another tenant took one since `refusals` looked."""
    identities = [resource_identity(res, ctx) for res in mapped]
    if owners.claim(conn, ctx.tenant, identities, now):
        raise IdConflict([IdRefusal("$", "", UNCLAIMED)])


def encounter_patient(conn: Connection, ctx: MappingContext, encounter_id: str) -> str | None:
    """The MRN the tenant's encounter was first sent for, if the store holds it."""
    return stored_patient(conn, ctx.tenant, identity.encounter(ctx, encounter_id))


def moved_refusal(encounter_id: str, mrn_field: str) -> IdRefusal:
    message = MOVED.format(id=encounter_id, mrn_field=mrn_field)
    return IdRefusal("encounter_id", encounter_id, message)


def _moved(
    conn: Connection, ctx: MappingContext, claims: Sequence[Claim], mrn_field: str
) -> list[IdRefusal]:
    encounter = next(c for c in claims if c.path == "encounter_id")
    patient = next(c for c in claims if c.path == mrn_field)
    bound = encounter_patient(conn, ctx, encounter.clinic_id)
    if bound is None or bound == patient.clinic_id:
        return []
    return [moved_refusal(encounter.clinic_id, mrn_field)]


def _taken(
    foreign: Sequence[Identity], claims: Sequence[Claim], ctx: MappingContext
) -> list[IdRefusal]:
    """One refusal per field whose id another tenant owns (in document order)."""
    fields: dict[str, Claim] = {}
    for ident in foreign:
        found = claim_of(ident, claims, ctx)
        if found is None:  # no field produced it (never so today): refuse the document
            return [IdRefusal("$", "", UNCLAIMED)]
        fields.setdefault(found.path, found)
    ordered = [c for c in claims if c.path in fields]
    return [IdRefusal(c.path, c.clinic_id, TAKEN.format(id=c.clinic_id)) for c in ordered]
