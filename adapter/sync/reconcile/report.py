"""What the store holds against what the EHR holds, per tenant, patient and resource type.

Scope, as the pull's (`adapter.sync.pull.scope`): the tenant's known patients and the
pulled types. Per patient, the EHR is asked for the Patient by its id and for each type
with a patient search parameter by `Type?<param>=<EHR patient id>` (all pages); the store
side is that patient's current resources of the type. A copy of ours with an EHR id the
search did not return is then asked for by `_id`: the EHR may hold it under another
patient or, as R4's `Provenance?patient=` only finds Provenances citing the Patient
itself (ours cite the encounter's records), out of reach of the patient search. Only
what that does not find either is missing on the EHR. The shared types (the clinic, its
staff) are compared once per tenant, by the EHR ids we hold (`_id=` lists, chunked).

The pairing and the verdicts are `adapter.sync.reconcile.compare`'s. The store is read per patient
in short transactions, so a push running meanwhile can show as a passing difference. A
patient (or the shared part) whose EHR reads fail retryably (429, 5xx, timeout) is compared
again, up to `ATTEMPTS` times, after the EHR's `Retry-After` or a backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from adapter.ehr.client import FhirClient
from adapter.errors import EhrBadResponse, EhrNotFound
from adapter.store import reconcile as store
from adapter.store.engine import Connection, Engine
from adapter.store.outbox_holds import undelivered_keys
from adapter.store.pull_scope import KnownPatient, known_patients
from adapter.sync.ehr_retry import retried
from adapter.sync.pull.scope import PATIENT_PARAM, SHARED_TYPES, pulled_types
from adapter.sync.push.payload import as_ehr_would_hold, ehr_references, load
from adapter.sync.push.worker import Backoff
from adapter.sync.reconcile.compare import Difference, Ours, Scope, Tally, compare
from mappings.jsontypes import JsonObject

IDS_PER_SEARCH = 50  # `_id=a,b,...`: short enough for any server's URL limit
PAGE_SIZE = "100"
ATTEMPTS = 3


@dataclass
class Result:
    """Every difference found, and the counts per resource type."""

    differences: list[Difference] = field(default_factory=list)
    tallies: dict[str, Tally] = field(default_factory=dict)
    patients: int = 0

    def add(self, other: Result) -> None:
        self.differences += other.differences
        self.patients += other.patients
        for kind, tally in other.tallies.items():
            self.tallies.setdefault(kind, Tally()).add(tally)


@dataclass(frozen=True)
class Plan:
    """One tenant's work: its patients, the types to compare, and our undelivered keys."""

    tenant: str
    patients: tuple[KnownPatient, ...]
    patient_types: tuple[str, ...]
    shared_types: tuple[str, ...]
    unsent: frozenset[str]


def plan(conn: Connection, tenant: str) -> Plan:
    """What to compare for `tenant`; keys of undelivered outbox entries mark our changes
    that are not on the EHR yet (pending, retrying, dead letters and conflicts alike)."""
    types = pulled_types(conn, tenant)
    return Plan(
        tenant,
        tuple(known_patients(conn, tenant)),
        tuple(t for t in types if t not in SHARED_TYPES and t != "Patient"),
        tuple(t for t in types if t in SHARED_TYPES),
        undelivered_keys(conn, tenant),
    )


def reconcile_tenant(
    engine: Engine,
    client: FhirClient,
    work: Plan,
    *,
    concurrency: int = 1,
    advance: Callable[[], object] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Compare the tenant's shared resources, then each patient's (`concurrency` at once)."""
    backoff = Backoff(base_seconds=1.0, cap_seconds=30.0)

    def paced(call: Callable[[], Result]) -> Result:
        return retried(call, attempts=ATTEMPTS, backoff=backoff, sleep=sleep)

    result = paced(lambda: reconcile_shared(engine, client, work))
    advance()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        try:
            compared = pool.map(
                lambda patient: paced(lambda: reconcile_patient(engine, client, work, patient)),
                work.patients,
            )
            for one in compared:
                result.add(one)
                advance()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return result


def reconcile_patient(
    engine: Engine, client: FhirClient, work: Plan, patient: KnownPatient
) -> Result:
    """One patient: the Patient by its EHR id, each type by the patient search, the rest of
    ours by `_id`. A patient the EHR never acknowledged costs no request: all of it is
    simply not yet sent."""
    with engine.connect() as conn:
        keys = store.patient_keys(conn, work.tenant, patient.patient_key, SHARED_TYPES)
        ours = _ours(conn, work, keys)
    theirs: dict[str, list[JsonObject]] = {"Patient": _patient(client, patient)}
    for kind in work.patient_types:
        param = PATIENT_PARAM.get(kind)
        if param is not None and patient.ehr_id is not None:
            theirs[kind] = _search(client, kind, param, patient.ehr_id)
    _find_the_rest(client, ours, theirs)
    with engine.connect() as conn:
        _drop_held_elsewhere(conn, work.tenant, ours, theirs)
    return _compared(Scope(work.tenant, patient.logical_id), ours, theirs, patients=1)


def reconcile_shared(engine: Engine, client: FhirClient, work: Plan) -> Result:
    """The tenant's clinic and staff, by the EHR ids we hold: no patient search finds them,
    and another clinic's on the same EHR are none of our business."""
    with engine.connect() as conn:
        ours = _ours(conn, work, store.shared_keys(conn, work.tenant, work.shared_types))
    theirs: dict[str, list[JsonObject]] = {kind: [] for kind in work.shared_types}
    _find_the_rest(client, ours, theirs)
    return _compared(Scope(work.tenant, None), ours, theirs)


def _compared(
    scope: Scope,
    ours: dict[str, list[Ours]],
    theirs: dict[str, list[JsonObject]],
    patients: int = 0,
) -> Result:
    tallies = {
        kind: compare(scope, kind, ours.get(kind, []), theirs.get(kind, []))
        for kind in sorted({*ours, *theirs})
    }
    return Result(scope.differences, tallies, patients)


def _ours(conn: Connection, work: Plan, keys: Sequence[str]) -> dict[str, list[Ours]]:
    """Our rows by type, each with its content in the EHR's vocabulary."""
    grouped: dict[str, list[Ours]] = {}
    items = load(conn, work.tenant, keys)
    targets = ehr_references(conn, work.tenant, [item for item in items if not item.deleted])
    for item in items:
        view = None if item.deleted else as_ehr_would_hold(conn, work.tenant, item, targets)
        mine = Ours(item, view, item.key in work.unsent)
        grouped.setdefault(item.identity.resource_type, []).append(mine)
    return grouped


def _patient(client: FhirClient, patient: KnownPatient) -> list[JsonObject]:
    if patient.ehr_id is None:
        return []
    try:
        return [client.read("Patient", patient.ehr_id).resource]
    except EhrNotFound:
        return []


def _search(client: FhirClient, kind: str, param: str, ehr_patient: str) -> list[JsonObject]:
    return list(_of_type(kind, client.search(kind, {param: ehr_patient, "_count": PAGE_SIZE})))


def _by_ids(client: FhirClient, kind: str, ids: Iterable[str]) -> Iterator[JsonObject]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), IDS_PER_SEARCH):
        chunk = ordered[start : start + IDS_PER_SEARCH]
        params = {"_id": ",".join(chunk), "_count": str(len(chunk))}
        yield from _of_type(kind, client.search(kind, params))


def _of_type(kind: str, found: Iterable[JsonObject]) -> Iterator[JsonObject]:
    for resource in found:
        if resource.get("resourceType") != kind:
            continue
        if not isinstance(resource.get("id"), str):
            raise EhrBadResponse(f"the EHR answered a {kind} without an id")
        yield resource


def _find_the_rest(
    client: FhirClient, ours: dict[str, list[Ours]], theirs: dict[str, list[JsonObject]]
) -> None:
    """Ask by `_id` for the copies of ours the EHR holds that no search brought."""
    for kind, mine in ours.items():
        found = {str(r["id"]) for r in theirs.get(kind, [])}
        wanted = {o.item.ehr_id for o in mine if o.item.ehr_id is not None} - found
        if wanted:
            theirs.setdefault(kind, []).extend(_by_ids(client, kind, wanted))


def _drop_held_elsewhere(
    conn: Connection, tenant: str, ours: dict[str, list[Ours]], theirs: dict[str, list[JsonObject]]
) -> None:
    """Leave out what the EHR files under this patient but the store holds under another:
    it is compared there (found by `_id`), so it is reported once."""
    for kind, found in theirs.items():
        known = {o.item.ehr_id for o in ours.get(kind, [])}
        strangers = {str(r["id"]) for r in found} - known
        if not strangers:
            continue
        elsewhere = store.held_among(conn, tenant, kind, strangers)
        theirs[kind] = [r for r in found if r["id"] not in elsewhere]
