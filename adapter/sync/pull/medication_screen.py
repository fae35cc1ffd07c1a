"""The interaction screen after a pull changed a patient's medication list on our side.

When the merge writes a MedicationStatement or MedicationRequest of a patient (one the
EHR created, imported; an EHR's edit of one; a deletion), the patient's list is screened
again in the same transaction:

- the EHR's own entries (`mappings.medication_review.screen_ehr_medications`): a
  DetectedIssue per entry still taken and interaction class, implicating the EHR's
  resource; an issue whose entry stopped, went away or left the class is resolved (a
  `mitigation`), never deleted;
- the clinic's reviews: an interaction issue all of whose implicated statements the EHR
  has since deleted or edited to no longer taken (stopped, completed, ...) is resolved the
  same way; a statement as the clinic sent it stands (its review's screen judged it).

What changed is stored and enqueued like a clinic document (`adapter.store.accept`), under
a scope of its own per patient (`ehr-medication-screen:<patient's logical id>`: no MRN),
so the EHR gets the issues with the next push. The clinic's issues keep their review's
scope: a resend of the review states the list anew, and its screen with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from adapter.store.accept import Submission, accept
from adapter.store.engine import Connection
from adapter.store.patient_rows import StoredResource, Wanted, patient_resources
from adapter.store.tenants import pinned_namespace
from mappings.common import identity
from mappings.common.builders import fhir_datetime
from mappings.common.lookup import objs, str_field
from mappings.common.narrative import with_narratives
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.jsontypes import Resource
from mappings.medication_review import (
    SCREEN_KIND,
    ehr_medication,
    refs,
    resolve_issue,
    screen_ehr_medications,
)

KIND = "ehr-medication-screen"
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest")
STOPPED = "stopped"
SOURCE_EHR = "ehr"


def screen_patients(
    conn: Connection, tenant: str, patient_keys: Iterable[str], now: datetime
) -> int:
    """Screen each patient's list again; the number of issues written (new or changed)."""
    namespace = pinned_namespace(conn, tenant)
    if namespace is None:
        return 0
    ctx = MappingContext(namespace=namespace, tenant=tenant)
    return sum(_screen(conn, ctx, key, now) for key in sorted(patient_keys))


def _screen(conn: Connection, ctx: MappingContext, mrn: str, now: datetime) -> int:
    ours = f"{ctx.namespace}/sid/"
    screen_system = identity.system(ctx, SCREEN_KIND)
    review_system = identity.system(ctx, refs.INTERACTION_KIND)
    rows = patient_resources(
        conn,
        ctx.tenant,
        mrn,
        [
            Wanted(MEDICATION_TYPES),
            Wanted(("DetectedIssue",), (screen_system, review_system)),
        ],
    )
    entries = [
        r.content
        for r in rows
        if r.resource_type in MEDICATION_TYPES and not r.identifier_system.startswith(ours)
    ]
    stored = [r.content for r in rows if r.identifier_system == screen_system]
    wanted = screen_ehr_medications(entries, stored, mrn, _when(now), ctx)
    changed = _changed(wanted, stored)
    resolved = _resolved_reviews(rows, review_system, now, ctx)
    if not changed and not resolved:
        return 0
    patient_id = identity.patient(ctx, mrn).id
    sub = Submission(
        tenant=ctx.tenant,
        kind=KIND,
        encounter_key=f"ehr-meds:{patient_id}",
        patient_key=mrn,
        scope_key=f"{KIND}:{patient_id}",
        document=b"\n".join(dumps(w) for w in wanted),
    )
    result = accept(conn, sub, wanted, ctx, now, resolved)
    return len(result.created) + len(result.updated)


def _changed(wanted: list[Resource], stored: list[Resource]) -> bool:
    before = {str(s.get("id")): dumps(s) for s in stored}
    return len(wanted) != len(before) or any(
        before.get(str(w.get("id"))) != dumps(w) for w in wanted
    )


def _resolved_reviews(
    rows: list[StoredResource], review_system: str, now: datetime, ctx: MappingContext
) -> list[Resource]:
    """The clinic's active interaction issues whose implicated statements are all no
    longer taken (the EHR stopped them), resolved."""
    statements = {r.reference: r for r in rows if r.resource_type == "MedicationStatement"}
    out: list[Resource] = []
    for row in rows:
        if row.identifier_system != review_system or row.content.get("mitigation"):
            continue
        implicated = [
            ref
            for i in objs(row.content.get("implicated"))
            if (ref := str_field(i, "reference")) and ref.startswith("MedicationStatement/")
        ]
        if implicated and all(_stopped(statements.get(ref)) for ref in implicated):
            out.append(_with_mitigation(row.content, now, ctx))
    return out


def _stopped(statement: StoredResource | None) -> bool:
    """True when the EHR deleted the statement or its edit says it is no longer taken; a
    statement as the clinic sent it is the review's word, which its own screen judged."""
    if statement is None:
        return True
    return statement.source == SOURCE_EHR and ehr_medication(statement.content)["status"] == STOPPED


def _with_mitigation(issue: Resource, now: datetime, ctx: MappingContext) -> Resource:
    (resolved,) = with_narratives([resolve_issue(issue, _when(now), ctx)])
    return resolved


def _when(now: datetime) -> str:
    """When the screen saw it, as a FHIR dateTime to the second."""
    return fhir_datetime(now.replace(microsecond=0))
