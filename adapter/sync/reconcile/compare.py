"""One resource type of one scope, compared side by side: our copies against the EHR's.

Pure: no store, no network. `adapter.sync.reconcile.report` gathers both sides; this module pairs
them by the EHR's id and says what differs. Content is compared in ONE vocabulary, the
EHR's: our side arrives already taken through `as_ehr_would_hold` (our references turned
into the EHR's ids). Both sides lose the server-managed elements (`diff.IGNORED`: `id`,
`meta`, `text`) and are hashed as canonical JSON (sorted keys, orjson's number forms), so
two copies are the same exactly when their hashes are.

What our push changes on the way needs no further care, checked against HAPI by
tests/integration/test_reconcile_on_sandbox.py: the push drops `id` (ignored), and the
`urn:uuid:` references of its Bundle come back as `Type/<EHR id>`, which is what
`as_ehr_would_hold` writes. Decimal forms need none either: both sides are parsed into
the same numbers before hashing (`1.50` and `1.5` are one float), while a change of JSON
type (`5` to `5.0`, or `true` to `"true"`) stays a difference, reported by its path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256

import orjson

from adapter.sync.field_changes import IGNORED, diff
from adapter.sync.push.payload import Stored
from mappings.common.lookup import identifiers, str_field
from mappings.jsontypes import JsonObject, JsonValue, Resource

NOT_YET_SENT = "not yet sent"
MISSING_ON_EHR = "missing on the EHR"
NOT_IN_STORE = "not in the store"
CONTENT_DIFFERS = "content differs"
KINDS = (NOT_YET_SENT, MISSING_ON_EHR, NOT_IN_STORE, CONTENT_DIFFERS)


@dataclass(frozen=True)
class Difference:
    """One difference, named by ids only: never an MRN, a name or a value.

    `patient` is our logical id of the patient (None for the tenant's shared resources);
    `paths` are the element paths that differ (`valueQuantity.value`, `code.coding[0]`).
    """

    tenant: str
    patient: str | None
    resource_type: str
    our_id: str | None
    ehr_id: str | None
    kind: str
    paths: tuple[str, ...] = ()


@dataclass
class Tally:
    """Counts of one resource type: compared in the store, found on the EHR, identical."""

    in_store: int = 0
    on_ehr: int = 0
    identical: int = 0

    def add(self, other: Tally) -> None:
        self.in_store += other.in_store
        self.on_ehr += other.on_ehr
        self.identical += other.identical


@dataclass(frozen=True)
class Ours:
    """One of our resources: its row, its content as the EHR would hold it (None for a
    tombstone), and whether the outbox still holds a change of it not delivered yet."""

    item: Stored
    view: Resource | None
    unsent: bool


@dataclass
class Scope:
    """Where a comparison happens: a tenant and a patient (our logical id; None: shared)."""

    tenant: str
    patient: str | None
    differences: list[Difference] = field(default_factory=list)

    def found(
        self,
        kind: str,
        resource_type: str,
        ours: Ours | None,
        ehr_id: str | None,
        paths: Sequence[str] = (),
    ) -> None:
        our_id = None if ours is None else ours.item.key.split("/", 1)[1]
        self.differences.append(
            Difference(self.tenant, self.patient, resource_type, our_id, ehr_id, kind, tuple(paths))
        )


def content_hash(resource: JsonObject) -> str:
    """SHA-256 of the resource as canonical JSON, server-managed elements left out."""
    kept = {k: v for k, v in resource.items() if k not in IGNORED}
    return sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()


def changed_paths(ours: JsonObject, theirs: JsonObject) -> list[str]:
    """The element paths where the two differ, JSON types included (`5` is not `5.0`)."""
    return [change.path for change in diff(_typed_object(ours), _typed_object(theirs))]


def _typed_object(value: JsonObject) -> JsonObject:
    return {k: _typed(v) for k, v in value.items()}


def _typed(value: JsonValue) -> JsonValue:
    # `diff` compares with ==, for which 1 == 1.0 == True; the hash does not. Comparing
    # leaves as their JSON text keeps the two verdicts the same.
    if isinstance(value, dict):
        return _typed_object(value)
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return orjson.dumps(value).decode()


def compare(
    scope: Scope, resource_type: str, ours: Sequence[Ours], theirs: Iterable[JsonObject]
) -> Tally:
    """Pair our copies with the EHR's by EHR id; record each difference in `scope`.

    A copy of ours without an EHR id that the EHR holds under our identifier (an answer
    lost on the way back) pairs with it too, and counts as not yet sent.
    """
    tally = Tally(in_store=sum(1 for o in ours if o.view is not None))
    by_ehr_id = {o.item.ehr_id: o for o in ours if o.item.ehr_id is not None}
    unacknowledged = {
        (o.item.identity.system, o.item.identity.value): o
        for o in ours
        if o.item.ehr_id is None and o.view is not None
    }
    seen: set[str] = set()  # EHR ids: a resource listed twice (paging shifted) counts once
    paired: set[str] = set()  # our keys
    for resource in theirs:
        ehr_id = str_field(resource, "id")
        if ehr_id is None or ehr_id in seen:
            continue
        seen.add(ehr_id)
        tally.on_ehr += 1
        mine = by_ehr_id.get(ehr_id) or _by_identifier(resource, unacknowledged)
        if mine is None:
            scope.found(NOT_IN_STORE, resource_type, None, ehr_id)
            continue
        paired.add(mine.item.key)
        if mine.view is None:  # our tombstone: a deletion still to send, or the EHR's undo
            scope.found(NOT_YET_SENT if mine.unsent else NOT_IN_STORE, resource_type, mine, ehr_id)
        elif mine.item.ehr_id is None:
            scope.found(
                NOT_YET_SENT, resource_type, mine, ehr_id, changed_paths(mine.view, resource)
            )
        elif content_hash(mine.view) == content_hash(resource):
            tally.identical += 1
        else:
            kind = NOT_YET_SENT if mine.unsent else CONTENT_DIFFERS
            scope.found(kind, resource_type, mine, ehr_id, changed_paths(mine.view, resource))
    for mine in ours:
        if mine.view is None or mine.item.key in paired:
            continue
        if mine.item.ehr_id is None:
            scope.found(NOT_YET_SENT, resource_type, mine, None)
        else:
            scope.found(MISSING_ON_EHR, resource_type, mine, mine.item.ehr_id)
    return tally


def _by_identifier(
    resource: JsonObject, unacknowledged: dict[tuple[str, str], Ours]
) -> Ours | None:
    for ident in identifiers(resource):
        system, value = str_field(ident, "system"), str_field(ident, "value")
        if system is not None and value is not None and (system, value) in unacknowledged:
            return unacknowledged[(system, value)]
    return None
