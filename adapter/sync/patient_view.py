"""The clinic's view of one patient: demographics, medication list and allergies, as the
clinic contract words them, from the clinic's records and what the pull took from the EHR.

Every item names its `source`: `clinic` when its current version came from the clinic
API, `ehr` when the pull wrote it (an EHR's edit of one of ours, or a resource the EHR
created, imported under the EHR's identifier). Its `fhir` reference is our logical id,
`updated_at` when the store last changed it. An item of ours the EHR edited shows the
EHR's content, read as the EHR's own items are (`mappings.medication_review.edited_medication`).

- `patient`: the Patient's current version through the reverse mapping; an EHR's edit the
  contract cannot hold (a partial birth date, say) is shown as the EHR wrote it.
- `medications`: the statements of the patient's latest medication review, in the
  review's order, then every imported MedicationStatement and MedicationRequest, in the
  order the pull stored them. The latest review is the one performed last
  (`performedDateTime`, the contract's `reviewed_at`), ties going to the one stored last;
  earlier reviews' statements are history, not the current list. Our own
  MedicationRequests (an infusion's order) carry our identifier and are no list items.
- `allergies`: the latest review's allergies, then the imported ones that the EHR does not
  mark refuted, entered in error, inactive or resolved. "No known allergies" is
  `allergies: []` with `no_known_allergies: true`: the latest review (or the EHR) stated
  it and no allergy is listed from either side; `[]` with `false` means none recorded.
- `alerts`: the active Flags and DetectedIssues about the patient, newest first: ours
  (screening risk and mania Flags, critical-vital Flags, the protocol's and the interaction
  screens' DetectedIssues) and the EHR's. A Flag is active while its status is; a
  DetectedIssue while it is not cancelled, entered in error or mitigated.
Tombstoned resources never appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from adapter.store.engine import Connection
from adapter.store.patient_rows import (
    StoredResource,
    Wanted,
    current_patient,
    patient_resources,
)
from mappings.common import identity
from mappings.common.identity import PART_SEPARATOR
from mappings.common.lookup import by_position, obj, objs, str_field
from mappings.common.people import patient_fields
from mappings.context import MappingContext
from mappings.contract import Patient
from mappings.jsontypes import JsonObject, JsonValue
from mappings.medication_review import (
    edited_medication,
    ehr_allergy,
    ehr_medication,
    is_current_allergy,
    is_no_known_allergy,
    refs,
    unmap_allergy,
    unmap_statement,
)

CLINIC = "clinic"
REVIEW_PART_TYPES = ("MedicationStatement", "AllergyIntolerance")
IMPORTED_MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest")
IMPORTED_TYPES = (*IMPORTED_MEDICATION_TYPES, "AllergyIntolerance")
ALERT_TYPES = ("Flag", "DetectedIssue")
CLOSED_ISSUE_STATUSES = frozenset({"cancelled", "entered-in-error"})
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def patient_view(conn: Connection, ctx: MappingContext, mrn: str) -> JsonObject | None:
    """The patient's current record, or None when the tenant holds no such patient."""
    patient = current_patient(conn, ctx.tenant, identity.patient(ctx, mrn))
    if patient is None:
        return None
    systems = _OurSystems.of(ctx)
    ours_prefix = f"{ctx.namespace}/sid/"
    rows = patient_resources(
        conn,
        ctx.tenant,
        mrn,
        [
            Wanted(("Procedure",), (systems.review,)),
            Wanted(REVIEW_PART_TYPES, (systems.statement, systems.allergy)),
            Wanted(IMPORTED_TYPES, foreign_to=ours_prefix),
            Wanted(ALERT_TYPES),
        ],
    )
    review = latest_review([r for r in rows if r.identifier_system == systems.review])
    review_key = review.identifier_value if review is not None else None
    ours = [r for r in rows if r.identifier_system.startswith(ours_prefix)]
    imported = [r for r in rows if not r.identifier_system.startswith(ours_prefix)]
    allergies, none_known = _allergies(ours, imported, review_key, ctx)
    return {
        "patient": _patient(patient, mrn),
        "medication_review": _review(review),
        "medications": _medications(ours, imported, review_key, ctx),
        "allergies": allergies,
        "no_known_allergies": none_known,
        "alerts": alerts([r for r in rows if r.resource_type in ALERT_TYPES]),
    }


@dataclass(frozen=True)
class _OurSystems:
    """The identifier systems of a review's resources (a part's value names its review by
    the review's record key, `<encounter_id>~<review_id>`)."""

    review: str
    statement: str
    allergy: str

    @classmethod
    def of(cls, ctx: MappingContext) -> _OurSystems:
        return cls(
            refs.review(ctx, "-").system,
            refs.statement(ctx, "-", 1).system,
            refs.allergy(ctx, "-", "-").system,
        )


def latest_review(reviews: Sequence[StoredResource]) -> StoredResource | None:
    """The review Procedure performed last (stored last among equals), if any."""
    return max(reviews, key=lambda r: (_performed(r), r.last_updated, r.pk), default=None)


def _performed(review: StoredResource) -> datetime:
    return _instant(str_field(review.content, "performedDateTime"))


def _instant(text: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(text) if text else _EARLIEST
    except ValueError:
        return _EARLIEST
    return moment if moment.tzinfo is not None else _EARLIEST


def _review(review: StoredResource | None) -> JsonValue:
    if review is None:
        return None
    performed = str_field(review.content, "performedDateTime")
    review_id = identity.record_id_of(review.identifier_value)
    return {"review_id": review_id, "reviewed_at": performed} | _about(review)


def _patient(row: StoredResource, mrn: str) -> JsonObject:
    fields = patient_fields(row.content, mrn)
    try:
        shown: JsonObject = Patient.model_validate(fields).model_dump(mode="json")
    except ValueError:  # pydantic's ValidationError: an EHR edit outside the contract
        shown = _as_written(fields)
    return shown | _about(row)


def _as_written(fields: JsonObject) -> JsonObject:
    """The fields as read, each kept only when it has the contract's JSON type."""
    out: JsonObject = {k: (v if isinstance(v, str) else None) for k, v in fields.items()}
    address = fields.get("address")
    if isinstance(address, dict):
        line = address.get("line")
        parts: JsonObject = {k: v for k, v in address.items() if isinstance(v, str)}
        if isinstance(line, list) and all(isinstance(item, str) for item in line):
            parts["line"] = line
        out["address"] = parts
    return out


def _medications(
    ours: Sequence[StoredResource],
    imported: Sequence[StoredResource],
    review_key: str | None,
    ctx: MappingContext,
) -> list[JsonValue]:
    listed: list[JsonValue] = []
    if review_key is not None:
        system = refs.statement(ctx, review_key, 1).system
        for row in by_position(_parts(ours, "MedicationStatement", system, review_key)):
            listed.append(_clinic_medication(row, ctx) | _about(row))
    for row in imported:
        if row.resource_type in IMPORTED_MEDICATION_TYPES:
            listed.append(ehr_medication(row.content) | _about(row))
    return listed


def _clinic_medication(row: StoredResource, ctx: MappingContext) -> JsonObject:
    if row.source != CLINIC:
        return edited_medication(row.content, ctx)
    return unmap_statement(row.content, ctx) | {"fhir_status": str_field(row.content, "status")}


def _allergies(
    ours: Sequence[StoredResource],
    imported: Sequence[StoredResource],
    review_key: str | None,
    ctx: MappingContext,
) -> tuple[list[JsonValue], bool]:
    """The allergies listed, and whether "no known allergies" stands (nothing listed)."""
    reviewed: list[StoredResource] = []
    none_known = False
    if review_key is not None:
        system = refs.allergy(ctx, review_key, refs.NO_KNOWN_ALLERGY).system
        parts = _parts(ours, "AllergyIntolerance", system, review_key)
        reviewed = by_position(parts)
        statements = [r for part, r in parts if part == refs.NO_KNOWN_ALLERGY]
        none_known = any(r.source == CLINIC for r in statements)
        reviewed += [r for r in statements if r.source != CLINIC]
    listed: list[JsonValue] = []
    for row in [*reviewed, *(r for r in imported if r.resource_type == "AllergyIntolerance")]:
        if row.source == CLINIC:
            listed.append(unmap_allergy(row.content) | _about(row))
        elif is_no_known_allergy(row.content, ctx):
            none_known = True
        elif is_current_allergy(row.content):
            listed.append(ehr_allergy(row.content) | _about(row))
    return listed, none_known and not listed


def alerts(rows: Sequence[StoredResource]) -> list[JsonValue]:
    """The active Flags and DetectedIssues, newest first (by when they were raised, then
    by when the store last changed them)."""
    active = [r for r in rows if is_active_alert(r.content)]
    active.sort(key=lambda r: (_raised(r.content), r.last_updated, r.pk), reverse=True)
    return [_alert(r) for r in active]


def is_active_alert(res: JsonObject) -> bool:
    """A Flag whose status is active; a DetectedIssue neither cancelled, entered in error
    nor mitigated (an interaction whose medication was stopped carries a mitigation)."""
    if res.get("resourceType") == "Flag":
        return res.get("status") == "active"
    return str_field(res, "status") not in CLOSED_ISSUE_STATUSES and not res.get("mitigation")


def _raised(res: JsonObject) -> datetime:
    text = str_field(obj(res.get("period")), "start") or str_field(res, "identifiedDateTime")
    return _instant(text)


def _alert(row: StoredResource) -> JsonObject:
    res = row.content
    code = obj(res.get("code"))
    coding = next(iter(objs(code.get("coding"))), {})
    is_flag = row.resource_type == "Flag"
    implicated: list[JsonValue] = [
        ref for i in objs(res.get("implicated")) if (ref := str_field(i, "reference"))
    ]
    return {
        "type": row.resource_type,
        "code": str_field(coding, "code"),
        "system": str_field(coding, "system"),
        "display": str_field(code, "text") or str_field(coding, "display"),
        "severity": None if is_flag else str_field(res, "severity"),
        "status": str_field(res, "status"),
        "raised_at": (
            str_field(obj(res.get("period")), "start")
            if is_flag
            else str_field(res, "identifiedDateTime")
        ),
        "detail": None if is_flag else str_field(res, "detail"),
        "implicated": implicated,
    } | _about(row)


def _parts(
    rows: Sequence[StoredResource], resource_type: str, system: str, owner: str
) -> list[tuple[str, StoredResource]]:
    """(part, row) for each row whose identifier under `system` is `<owner>~<part>`."""
    prefix = owner + PART_SEPARATOR
    return [
        (r.identifier_value.removeprefix(prefix), r)
        for r in rows
        if r.resource_type == resource_type
        and r.identifier_system == system
        and r.identifier_value.startswith(prefix)
    ]


def _about(row: StoredResource) -> JsonObject:
    return {
        "source": row.source,
        "updated_at": row.last_updated.isoformat(),
        "fhir": row.reference,
    }
