"""The interaction screen over the EHR's medication list: a DetectedIssue per medication
the EHR lists (a MedicationStatement or MedicationRequest it wrote) and interaction class.

The clinic's own review is screened when it is mapped (`interactions.py`); what a
psychiatrist adds on the EHR comes back with the pull and is screened here, over the
patient's whole current list as the EHR states it: each entry is read as the contract's
medication (`ehr_lists.ehr_medication`), so an entry the EHR marks stopped, completed,
not-taken, cancelled or entered in error is no longer taken and raises no alert. Its
issue implicates the EHR's resource (our copy of it, which the push names by the EHR's
id); the code, severity and words are the clinic review's (`interaction_alerts.csv`).

An issue whose cause is gone (the entry stopped, deleted, or no longer in the class) is
not deleted: it is *resolved*, kept with a `mitigation` (v3 ActCode 13, "Stopped Concurrent
Therapy") dated when the screen saw it, so the EHR's copy says so too. An entry taken
again makes the issue active again. Pure: the adapter reads the list and writes the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import concept, resource, term
from mappings.common.identity import Identity
from mappings.common.lookup import obj, str_field
from mappings.common.narrative import with_narratives
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.medication_review.ehr_lists import STOPPED, ehr_medication
from mappings.medication_review.interactions import ALERTS, classes_of

SCREEN_KIND = "ehr-medication-interaction"
"""Identifier kind: `<namespace>/sid/ehr-medication-interaction`, value
`<resource type>~<our logical id of the EHR's entry>~<class>`."""
PROTOCOL_ALERTS = "protocol_alerts"
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest")
_WHEN = ("dateAsserted", "authoredOn", "effectiveDateTime")


def screen_identity(ctx: MappingContext, entry: Resource, interaction_class: str) -> Identity:
    kind = str(entry.get("resourceType"))
    return identity.identity(
        ctx, "DetectedIssue", SCREEN_KIND, kind, str(entry.get("id")), interaction_class
    )


def screen_ehr_medications(
    entries: Sequence[Resource],
    stored: Sequence[Resource],
    patient_mrn: str,
    resolved_at: str,
    ctx: MappingContext,
) -> list[Resource]:
    """The screen's issues for the patient: one active issue per entry still taken and
    class; every `stored` issue of the screen not among them, resolved at `resolved_at`
    (kept as it is when it was resolved already)."""
    wanted: dict[str, Resource] = {}
    for entry in entries:
        if entry.get("resourceType") not in MEDICATION_TYPES:
            continue
        med = ehr_medication(entry)
        if med["status"] == STOPPED:
            continue
        name = med["name"] if isinstance(med["name"], str) else ""
        rxnorm = med["rxnorm"] if isinstance(med["rxnorm"], str) else None
        for key in classes_of(name, rxnorm):
            issue = _issue(entry, key, name, patient_mrn, ctx)
            wanted[str(issue["id"])] = issue
    resolved = [
        resolve_issue(s, resolved_at, ctx) for s in stored if str(s.get("id")) not in wanted
    ]
    return with_narratives([*wanted.values(), *resolved])


def _issue(entry: Resource, key: str, name: str, patient_mrn: str, ctx: MappingContext) -> Resource:
    out = resource(screen_identity(ctx, entry, key), ctx)
    out["status"] = "final"
    alert = terminology.code(ALERTS, f"class-{key}")
    out["code"] = concept([terminology.code(ALERTS, "drug-interaction"), alert], ctx)
    out["severity"] = terminology.code(ALERTS, f"severity-{key}").code
    out["patient"] = identity.patient(ctx, patient_mrn).ref()
    when = _listed_at(entry)
    if when is not None:
        out["identifiedDateTime"] = when
    out["author"] = identity.device(ctx).ref(ctx.adapter_name)
    out["implicated"] = [{"reference": f"{entry.get('resourceType')}/{entry.get('id')}"}]
    shown = name or "a medication without a name"
    out["detail"] = f"{alert.display}. Implicated: {shown} (on the EHR's medication list)."
    return out


def _listed_at(entry: Resource) -> str | None:
    for element in _WHEN:
        found = str_field(entry, element)
        if found is not None:
            return found
    return str_field(obj(entry.get("effectivePeriod")), "start")


def resolve_issue(issue: Resource, resolved_at: str, ctx: MappingContext) -> Resource:
    """`issue` resolved at `resolved_at`: with a mitigation saying its medication is no
    longer taken (itself when it has a mitigation already)."""
    if issue.get("mitigation"):
        return issue
    # No `author`: R4 allows a Practitioner there, and the adapter (a Device) saw it.
    mitigation: JsonObject = {
        "action": term(PROTOCOL_ALERTS, "issue-resolved", ctx),
        "date": resolved_at,
    }
    listed: list[JsonValue] = [mitigation]
    return {**issue, "mitigation": listed}
