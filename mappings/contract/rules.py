"""Cross-field rules of the contract: each returns every issue it finds, never raises.

The models call these from their `model_validator`s (so they run once the fields are
well-formed) and raise one `contract_error` carrying all the issues; `parse.py` calls
`provider_reference_issues` on the raw document too, so that a bad reference is reported
even when another part of the document is malformed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from mappings.contract.translate import Issue
from mappings.contract.units import WEIGHT, fmt

if TYPE_CHECKING:
    from mappings.contract.models import (
        AdverseEventRecord,
        EncounterSubmission,
        Indication,
        InfusionProcedure,
        VitalsObservation,
    )

DOSE_TOLERANCE = 0.05
_ROUNDING = 1e-9  # so that exactly 5% off (e.g. 32.3 for 34) is not lost to float error
WEIGHT_BASED_ROUTES = ("intravenous", "intramuscular")
VITALS_MEASUREMENTS = (
    "systolic", "diastolic", "heart_rate", "respiratory_rate", "spo2", "temperature", "weight",
    "height",
)  # fmt: skip
KNOWN_PROVIDERS = "known_provider_ids"
"""Validation-context key: provider ids a per-record submission may name (None: unchecked)."""


DEPRESSIVE_INDICATIONS = ("major_depressive_disorder", "treatment_resistant_depression")
EPISODE_ICD10 = {"single": "F32", "recurrent": "F33"}


def indication_issues(indication: Indication) -> list[Issue]:
    issues: list[Issue] = []
    if indication.code == "other" and indication.text is None:
        issues.append(("text", "required when code is other"))
    episode, icd10 = indication.episode, indication.icd10
    if episode is not None and indication.code not in DEPRESSIVE_INDICATIONS:
        issues.append(("episode", "only for " + " or ".join(DEPRESSIVE_INDICATIONS)))
    elif episode is not None and icd10 is not None and icd10[:3] != EPISODE_ICD10[episode]:
        message = f"{icd10} does not code a {episode}-episode major depressive disorder"
        issues.append(("icd10", message + f" ({EPISODE_ICD10[episode]}.x)"))
    return issues


def adverse_event_issues(event: AdverseEventRecord) -> list[Issue]:
    if event.type == "other" and event.text is None:
        return [("text", "required when type is other")]
    return []


def vitals_issues(vitals: VitalsObservation) -> list[Issue]:
    issues: list[Issue] = []
    if all(getattr(vitals, name) is None for name in VITALS_MEASUREMENTS):
        issues.append(
            ("", "at least one measurement is required: " + ", ".join(VITALS_MEASUREMENTS))
        )
    systolic, diastolic = vitals.systolic, vitals.diastolic
    if systolic is not None and diastolic is None:
        issues.append(("diastolic", "required when systolic is given (both or neither)"))
    if diastolic is not None and systolic is None:
        issues.append(("systolic", "required when diastolic is given (both or neither)"))
    if systolic is not None and diastolic is not None and systolic.value <= diastolic.value:
        message = (
            f"systolic {fmt(systolic.value)} {systolic.unit} must be greater than "
            f"diastolic {fmt(diastolic.value)} {diastolic.unit}"
        )
        issues.append(("systolic", message))
    return issues


def infusion_issues(infusion: InfusionProcedure) -> list[Issue]:
    return [
        *_status_issues(infusion),
        *_timing_issues(infusion),
        *_route_issues(infusion),
        *_dose_issues(infusion),
    ]


def _status_issues(infusion: InfusionProcedure) -> list[Issue]:
    if infusion.status in ("stopped", "not_done") and infusion.status_reason is None:
        return [("status_reason", f"required when status is {infusion.status}")]
    return []


def _timing_issues(infusion: InfusionProcedure) -> list[Issue]:
    issues: list[Issue] = []
    if infusion.status != "not_done":
        for name in ("start", "end"):
            if getattr(infusion, name) is None:
                issues.append((name, "required unless status is not_done"))
    issues += not_before("end", infusion.end, "start", infusion.start)
    issues += not_before("recovery_end", infusion.recovery_end, "end", infusion.end)
    return issues


def not_before(
    name: str, later: datetime | None, other: str, earlier: datetime | None
) -> list[Issue]:
    if later is not None and earlier is not None and later < earlier:
        message = f"{name} {later.isoformat()} is before {other} {earlier.isoformat()}"
        return [(name, message)]
    return []


def _route_issues(infusion: InfusionProcedure) -> list[Issue]:
    issues: list[Issue] = []
    if infusion.medication == "esketamine" and infusion.route != "intranasal":
        issues.append(("route", "esketamine is given intranasally: route must be intranasal"))
    if infusion.route in WEIGHT_BASED_ROUTES:
        for name in ("weight", "dose_mg_per_kg"):
            if getattr(infusion, name) is None:
                issues.append((name, f"required when route is {infusion.route}"))
    return issues


def _dose_issues(infusion: InfusionProcedure) -> list[Issue]:
    weight, per_kg = infusion.weight, infusion.dose_mg_per_kg
    if infusion.route not in WEIGHT_BASED_ROUTES or weight is None or per_kg is None:
        return []
    kg = WEIGHT.in_canonical(weight.value, weight.unit)
    expected = per_kg * kg
    if abs(infusion.total_dose_mg - expected) <= (DOSE_TOLERANCE + _ROUNDING) * expected:
        return []
    shown = f"{fmt(weight.value)} {weight.unit}"
    if weight.unit != "kg":
        shown += f" ({fmt(kg)} kg)"
    message = (
        f"total_dose_mg {fmt(infusion.total_dose_mg)} does not agree with dose_mg_per_kg "
        f"{fmt(per_kg)} × weight {shown} = {fmt(expected)} mg (5% tolerance)"
    )
    return [("total_dose_mg", message)]


def provider_reference_issues(
    references: Iterable[tuple[str, object]], known: Collection[str], whose: str
) -> list[Issue]:
    """Each (path, provider id) must name one of `known`; `whose` says where they come from."""
    return [
        (path, f"names provider {ref}, which is not in {whose}")
        for path, ref in references
        if isinstance(ref, str) and ref not in known
    ]


def references_of(document: Mapping[str, object]) -> list[tuple[str, object]]:
    """The provider references of an encounter document (raw JSON or model dump)."""
    refs: list[tuple[str, object]] = []
    for record, fields in (
        ("infusion", ("administered_by", "monitored_by")),
        ("medication_review", ("reviewed_by",)),
        ("consent", ("witnessed_by",)),
        ("discharge", ("discharged_by",)),
    ):
        body = document.get(record)
        if isinstance(body, Mapping):
            refs += [(f"{record}.{name}", body.get(name)) for name in fields]
    return refs


def encounter_issues(encounter: EncounterSubmission) -> list[Issue]:
    issues = not_before("end", encounter.end, "start", encounter.start)
    staff = encounter.providers or []
    issues += duplicate_id_issues("providers", [p.provider_id for p in staff], "provider_id")
    readings = encounter.vitals or []
    issues += duplicate_id_issues("vitals", [v.vitals_id for v in readings], "vitals_id")
    refs: list[tuple[str, object]] = []
    if encounter.infusion is not None:
        refs.append(("infusion.administered_by", encounter.infusion.administered_by))
        refs.append(("infusion.monitored_by", encounter.infusion.monitored_by))
    if encounter.medication_review is not None:
        refs.append(("medication_review.reviewed_by", encounter.medication_review.reviewed_by))
    known = {p.provider_id for p in staff}
    return issues + provider_reference_issues(refs, known, "this encounter's providers")


def duplicate_id_issues(listing: str, ids: list[str], field: str) -> list[Issue]:
    seen: dict[str, int] = {}
    issues: list[Issue] = []
    for index, value in enumerate(ids):
        if value in seen:
            message = f"duplicate {field} {value} (also {listing}[{seen[value]}])"
            issues.append((f"{listing}[{index}].{field}", message))
        seen.setdefault(value, index)
    return issues
