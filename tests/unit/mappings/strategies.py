"""Hypothesis strategies for VALID clinic contract (v1) documents.

Every strategy here yields something the contract accepts, so mapper tests can use them
for property-based round trips without filtering. Two flavours of each:

- `*_documents()` yield JSON-ready dicts, exactly what a clinic would send (date-times as
  strings with an offset, measurements as `{"value", "unit"}`);
- the plain names (`encounter_submissions()`, `patients()`, `providers()`,
  `intake_screenings()`, `infusion_procedures()`, `vitals_observations()`,
  `medication_reviews()`) yield the parsed models (`mappings.contract`).

What the generated documents honour (the cross-field rules of the contract):
- every date-time carries an offset, drawn from `Z`, `+00:00` and several non-zero ones
  (including half-hour offsets); the same instant may be written with different offsets
  in one document;
- ordering: encounter start <= infusion start <= infusion end <= recovery end <= encounter end;
- infusion: IV/IM always carry `weight` (kg or lb) and `dose_mg_per_kg`, and `total_dose_mg`
  is mg/kg x weight in kg (rounded to 0.01 mg, well inside the 5% tolerance); esketamine is
  always intranasal; `status_reason` is present when stopped/not_done; a not_done infusion
  has no times;
- vitals: at least one measurement, systolic and diastolic together with systolic >
  diastolic, each unit among those allowed and each value inside the range for its unit
  (after converting to the canonical unit);
- instruments have exact item counts (PHQ-9 9 x 0-3, GAD-7 7 x 0-3, PCL-5 20 x 0-4), all 9
  contraindication keys and all 6 C-SSRS keys are present;
- NPIs pass the Luhn check (prefix 80840); `administered_by`, `monitored_by` and
  `reviewed_by` name a provider of the encounter (or are absent); record ids are unique
  within an encounter;
- indications with code `other` and adverse events of type `other` carry `text`; an
  indication's `episode` only with major depression, agreeing with its `icd10`;
- care records: consent, course (session within the plan), discharge (fit to leave after the
  start) independently present; REMS assessments (after the dose) only with an esketamine
  infusion that started; providers named by `name`, by `family_name` (and `given_name`), or both;
- names and free text are arbitrary Unicode (no surrogates, no C0 control character but
  tab, line feed and carriage return), never empty or blank;
- optional fields are independently present or absent; birth dates are before 2026-01-01
  (pass `today=` a later date, or None, when parsing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st

from mappings.contract import (
    EncounterSubmission,
    InfusionProcedure,
    IntakeScreening,
    MedicationReview,
    Patient,
    Provider,
    VitalsObservation,
)

Doc = dict[str, Any]

LB_PER_KG = 1 / 0.45359237
CONTRAINDICATION_KEYS = (
    "uncontrolled_hypertension",
    "unstable_cardiovascular_disease",
    "uncontrolled_thyroid_disease",
    "elevated_intracranial_pressure",
    "history_of_psychosis",
    "bipolar_manic_phase",
    "uncontrolled_glaucoma",
    "pregnant",
    "prior_ketamine_adverse_reaction",
)
CSSRS_KEYS = (
    "wish_to_be_dead",
    "non_specific_active_thoughts",
    "active_ideation_with_method",
    "active_ideation_with_intent",
    "active_ideation_with_plan",
    "suicidal_behavior_past_3_months",
)
OFFSETS = (None, 0, -5 * 60, -8 * 60, 60, 5 * 60 + 30, -(3 * 60 + 30), 9 * 60, 14 * 60, -12 * 60)
"""Minutes east of UTC; None means UTC written as `Z`."""

# ---------------------------------------------------------------- primitives


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _drop_none(doc: Doc) -> Doc:
    """Optional fields are absent (not null) in generated documents."""
    return {k: v for k, v in doc.items() if v is not None}


def _document(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Doc]:
    return st.fixed_dictionaries(fields).map(_drop_none)


ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64)
rxnorms = st.integers(1, 9_999_999_999).map(str)
# FHIR strings allow no C0 control character but tab, line feed and carriage return.
FORBIDDEN_CONTROLS = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
texts = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=["Cs"], exclude_characters=FORBIDDEN_CONTROLS
    ),
    min_size=1,
    max_size=40,
).map(lambda s: s if s.strip() else f"x{s}")
bools = st.booleans()
emails = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
    st.sampled_from(["org", "com", "net", "example"]),
)
instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


def render(instant: datetime, offset_minutes: int | None) -> str:
    """An aware instant as the contract's date-time string, with the chosen offset."""
    if offset_minutes is None:
        return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return instant.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


offsets = st.sampled_from(OFFSETS)


@cache
def date_times() -> st.SearchStrategy[str]:
    """Date-time strings (2024-2030, whole seconds) with varied offsets."""
    return st.builds(render, instants, offsets)


def _draw_time(draw: st.DrawFn, base: datetime, within_minutes: int = 0) -> tuple[datetime, str]:
    """An instant in `base + [0, within_minutes]`, and its rendering with a drawn offset."""
    instant = base + timedelta(minutes=draw(st.integers(0, within_minutes)))
    return instant, render(instant, draw(offsets))


def npis() -> st.SearchStrategy[str]:
    """10-digit NPIs whose last digit is the Luhn check digit (with the 80840 prefix)."""
    return (
        st.integers(0, 999_999_999)
        .map(lambda n: f"{n:09d}")
        .map(lambda body: body + npi_check_digit(body))
    )


def npi_check_digit(first_nine: str) -> str:
    total = 0
    for i, ch in enumerate(reversed("80840" + first_nine)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def _number(low: float, high: float, places: int = 1) -> st.SearchStrategy[float | int]:
    """A JSON number within [low, high]: sometimes an int, sometimes a decimal."""
    as_int = st.integers(int(low) + 1, int(high) - 1)
    scale = 10**places
    as_dec = st.integers(int(low * scale) + 1, int(high * scale) - 1).map(lambda n: n / scale)
    return as_int | as_dec


@cache
def measurements(ranges: tuple[tuple[str, float, float], ...]) -> st.SearchStrategy[Doc]:
    """`{"value", "unit"}` for one of the units, the value inside that unit's range."""
    return st.one_of(
        [
            st.fixed_dictionaries({"value": _number(lo, hi), "unit": st.just(unit)})
            for unit, lo, hi in ranges
        ]
    )


# Ranges expressed in each unit, slightly inside the canonical limits.
HEART_RATE = (("/min", 20.0, 300.0),)
RESPIRATORY_RATE = (("/min", 2.0, 80.0),)
SPO2 = (("%", 50.0, 100.0),)
TEMPERATURE = (("Cel", 30.0, 45.0), ("degF", 86.1, 112.9))
WEIGHT = (("kg", 1.0, 500.0), ("lb", 2.3, 1102.0))
HEIGHT = (("cm", 30.0, 272.0), ("in", 11.9, 107.0))
DOSING_WEIGHT = (("kg", 20.0, 250.0), ("lb", 45.0, 550.0))


# ---------------------------------------------------------------- people


@cache
def address_documents() -> st.SearchStrategy[Doc]:
    return _document(
        line=_optional(st.lists(texts, min_size=1, max_size=3)),
        city=_optional(texts),
        state=_optional(texts),
        postal_code=_optional(
            st.sampled_from(["62704", "D02 X285", "SW1A 1AA", "10115", "K1A 0B1"])
        ),
        country=_optional(st.sampled_from(["US", "CA", "GB", "IE", "DE", "MX", "IN", "JP"])),
    )


@cache
def patient_documents() -> st.SearchStrategy[Doc]:
    return _document(
        mrn=ids,
        given_name=texts,
        family_name=texts,
        birth_date=st.dates(date(1900, 1, 1), date(2025, 12, 31)).map(date.isoformat),
        sex=st.sampled_from(["female", "male", "other", "unknown"]),
        phone=_optional(
            st.sampled_from(["+1-555-010-4477", "(555) 010 9921", "+353 1 555 0199", "5550104477"])
        ),
        email=_optional(emails),
        address=_optional(address_documents()),
    )


ROLES = ["anesthesiologist", "nurse_anesthetist", "registered_nurse", "psychiatrist", "physician"]


@cache
def provider_documents(provider_id: st.SearchStrategy[str] = ids) -> st.SearchStrategy[Doc]:
    common = {
        "provider_id": provider_id,
        "role": st.sampled_from(ROLES),
        "npi": _optional(npis()),
        "acls_certified": _optional(bools),
    }
    named = _document(name=texts, **common)
    in_parts = _document(
        name=_optional(texts), family_name=texts, given_name=_optional(texts), **common
    )
    return named | in_parts


INDICATIONS = [
    "treatment_resistant_depression",
    "major_depressive_disorder",
    "ptsd",
    "generalized_anxiety_disorder",
    "suicidal_ideation",
    "neuropathic_pain",
    "crps",
]
ICD10 = ["F33.2", "F32.9", "F43.10", "F41.1", "G90.521", "R45.851", "F33.1", "G89.4", "F32.A"]


@cache
def indication_documents() -> st.SearchStrategy[Doc]:
    coded = _document(
        code=st.sampled_from(INDICATIONS),
        icd10=_optional(st.sampled_from(ICD10)),
        text=_optional(texts),
    )
    other = _document(code=st.just("other"), icd10=_optional(st.sampled_from(ICD10)), text=texts)
    return coded | other | _depression_with_episode()


@st.composite
def _depression_with_episode(draw: st.DrawFn) -> Doc:
    """Major depression with its episode, and an ICD-10-CM code that agrees (or none)."""
    episode = draw(st.sampled_from(["single", "recurrent"]))
    codes = [c for c in ICD10 if c.startswith("F32" if episode == "single" else "F33")]
    doc = {
        "code": draw(
            st.sampled_from(["major_depressive_disorder", "treatment_resistant_depression"])
        ),
        "episode": episode,
        "icd10": draw(_optional(st.sampled_from(codes))),
        "text": draw(_optional(texts)),
    }
    return _drop_none(doc)


# ---------------------------------------------------------------- intake


@cache
def intake_screening_documents() -> st.SearchStrategy[Doc]:
    item03 = st.integers(0, 3)
    return _document(
        screening_id=ids,
        completed_at=date_times(),
        phq9=_optional(st.lists(item03, min_size=9, max_size=9)),
        gad7=_optional(st.lists(item03, min_size=7, max_size=7)),
        pcl5=_optional(st.lists(st.integers(0, 4), min_size=20, max_size=20)),
        cssrs=_optional(st.fixed_dictionaries({k: bools for k in CSSRS_KEYS})),
        pain_score=_optional(st.integers(0, 10)),
        contraindications=st.fixed_dictionaries({k: bools for k in CONTRAINDICATION_KEYS}),
        bipolar_disorder=_optional(bools),
        last_oral_intake_at=_optional(date_times()),
        escort=_optional(_document(name=_optional(texts), phone=_optional(texts), confirmed=bools)),
        notes=_optional(texts),
    )


# ---------------------------------------------------------------- infusion

ADVERSE_TYPES = [
    "nausea",
    "vomiting",
    "dissociation",
    "hypertension",
    "tachycardia",
    "hallucination",
    "emergence_reaction",
    "oxygen_desaturation",
    "excessive_sedation",
]
ADJUNCT_ROUTES = [
    "intravenous",
    "intranasal",
    "intramuscular",
    "oral",
    "subcutaneous",
    "sublingual",
]
SEVERITIES = ["mild", "moderate", "severe"]


@cache
def adverse_event_documents() -> st.SearchStrategy[Doc]:
    common = {
        "severity": st.sampled_from(SEVERITIES),
        "onset": _optional(date_times()),
        "resolved": _optional(bools),
        "treatment": _optional(texts),
    }
    named = _document(type=st.sampled_from(ADVERSE_TYPES), text=_optional(texts), **common)
    other = _document(type=st.just("other"), text=texts, **common)
    return named | other


@cache
def adjunct_documents() -> st.SearchStrategy[Doc]:
    return _document(
        name=texts,
        dose_mg=_number(0.0, 10_000.0, places=2),
        route=st.sampled_from(ADJUNCT_ROUTES),
        given_at=date_times(),
        rxnorm=_optional(rxnorms),
    )


def _provider_ids(providers: Sequence[str | Provider | Doc]) -> list[str]:
    out: list[str] = []
    for p in providers:
        out.append(
            p
            if isinstance(p, str)
            else p.provider_id
            if isinstance(p, Provider)
            else str(p["provider_id"])
        )
    return out


def _reference(providers: Sequence[str | Provider | Doc]) -> st.SearchStrategy[str | None]:
    known = _provider_ids(providers)
    return _optional(st.sampled_from(known)) if known else st.none()


@st.composite
def _dosing(draw: st.DrawFn, route: str, medication: str) -> Doc:
    """weight, dose_mg_per_kg and total_dose_mg that agree (or esketamine's fixed doses)."""
    if route == "intranasal":
        doc: Doc = {"total_dose_mg": draw(st.sampled_from([28, 56, 84, 28.0, 56.0]))}
        if medication == "ketamine" and draw(bools):
            doc["weight"] = draw(measurements(DOSING_WEIGHT))
        return doc
    weight = draw(measurements(DOSING_WEIGHT))
    kg = weight["value"] / LB_PER_KG if weight["unit"] == "lb" else weight["value"]
    dose = draw(st.integers(5, 200)) / 100  # 0.05 - 2.0 mg/kg
    return {"weight": weight, "dose_mg_per_kg": dose, "total_dose_mg": round(dose * kg, 2)}


@st.composite
def infusion_documents(
    draw: st.DrawFn,
    providers: Sequence[str | Provider | Doc] = (),
    around: datetime | None = None,
) -> Doc:
    """An infusion; references name one of `providers` (ids, Provider models or dicts)."""
    medication = draw(st.sampled_from(["ketamine", "esketamine"]))
    routes = (
        ["intranasal"]
        if medication == "esketamine"
        else ["intravenous", "intramuscular", "intravenous", "intranasal"]
    )
    route = draw(st.sampled_from(routes))
    status = draw(st.sampled_from(["completed", "stopped", "not_done"]))
    start = around if around is not None else draw(instants)
    start = start + timedelta(minutes=draw(st.integers(0, 30)))
    doc: Doc = {
        "procedure_id": draw(ids),
        "medication": medication,
        "route": route,
        "status": status,
    }
    if status != "completed" or draw(bools):
        doc["status_reason"] = draw(texts) if status != "completed" else draw(_optional(texts))
    if status != "not_done":
        _, doc["start"] = _draw_time(draw, start)
        end, doc["end"] = _draw_time(draw, start, 120)
        if draw(bools):
            _, doc["recovery_end"] = _draw_time(draw, end, 120)
    doc.update(draw(_dosing(route, medication)))
    doc["administered_by"] = draw(_reference(providers))
    doc["monitored_by"] = draw(_reference(providers))
    doc["adjunct_medications"] = draw(_optional(st.lists(adjunct_documents(), max_size=3)))
    doc["adverse_events"] = draw(_optional(st.lists(adverse_event_documents(), max_size=3)))
    doc["notes"] = draw(_optional(texts))
    doc["drug_product"] = draw(_optional(drug_product_documents()))
    return _drop_none(doc)


NDCS = ["50458-028-00", "50458-028-02", "0409-4887-02", "12345-6789-1", "00409-4887-02"]


@cache
def drug_product_documents() -> st.SearchStrategy[Doc]:
    return _document(
        ndc=st.sampled_from(NDCS),
        lot_number=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ./_-]{0,12}", fullmatch=True),
        expiration_date=st.dates(date(2025, 1, 1), date(2030, 12, 31)).map(date.isoformat),
    )


# ---------------------------------------------------------------- care records

INSTRUCTIONS = ["no_driving_24h", "no_alcohol_24h", "no_major_decisions_24h", "crisis_line_988"]


@st.composite
def care_documents(draw: st.DrawFn, doc: Doc, start: datetime) -> Doc:
    """The optional care records of an encounter `doc` that starts at `start`."""
    known = _provider_ids(doc.get("providers") or [])
    care: Doc = {
        "consent": draw(
            _optional(
                _document(
                    consent_id=ids,
                    signed_at=date_times(),
                    treatment=texts,
                    off_label_disclosed=bools,
                    witnessed_by=_reference(known),
                )
            )
        ),
        "course": draw(_optional(_course_documents())),
    }
    if draw(bools):
        _, fit = _draw_time(draw, start, 600)
        care["discharge"] = _drop_none(
            {
                "fit_to_leave_at": fit,
                "escort_confirmed": draw(bools),
                "instructions_given": draw(st.lists(st.sampled_from(INSTRUCTIONS), unique=True)),
                "discharged_by": draw(_reference(known)),
            }
        )
    infusion = doc.get("infusion") or {}
    if infusion.get("medication") == "esketamine" and "start" in infusion and draw(bools):
        dosed = datetime.fromisoformat(infusion["start"])
        checks = draw(st.lists(_assessment(dosed), min_size=1, max_size=4))
        care["rems_monitoring"] = {"assessments": checks}
    return care


@st.composite
def _course_documents(draw: st.DrawFn) -> Doc:
    planned = draw(_optional(st.integers(1, 12)))
    session = draw(st.integers(1, planned if planned is not None else 40))
    course = {
        "course_id": draw(ids),
        "phase": draw(st.sampled_from(["induction", "maintenance"])),
        "session_number": session,
        "planned_sessions": planned,
    }
    return _drop_none(course)


@st.composite
def _assessment(draw: st.DrawFn, dosed: datetime) -> Doc:
    _, at = _draw_time(draw, dosed, 180)
    return {"assessed_at": at, "sedation": draw(bools), "dissociation": draw(bools)}


# ---------------------------------------------------------------- vitals

VITAL_MEASUREMENTS = {
    "heart_rate": HEART_RATE,
    "respiratory_rate": RESPIRATORY_RATE,
    "spo2": SPO2,
    "temperature": TEMPERATURE,
    "weight": WEIGHT,
    "height": HEIGHT,
}
PHASES = ["baseline", "pre_infusion", "intra_infusion", "post_infusion", "discharge"]


@st.composite
def vitals_documents(draw: st.DrawFn, vitals_id: st.SearchStrategy[str] = ids) -> Doc:
    doc: Doc = {
        "vitals_id": draw(vitals_id),
        "taken_at": draw(date_times()),
        "phase": draw(st.sampled_from(PHASES)),
    }
    if draw(bools):
        systolic = draw(_number(21.0, 300.0))
        doc["systolic"] = {"value": systolic, "unit": "mmHg"}
        tenths = draw(st.integers(200, math.ceil(systolic * 10) - 1))
        diastolic = tenths // 10 if tenths % 10 == 0 and draw(bools) else tenths / 10
        doc["diastolic"] = {"value": diastolic, "unit": "mmHg"}
    for name, ranges in VITAL_MEASUREMENTS.items():
        if draw(st.integers(0, 2)) == 0:
            doc[name] = draw(measurements(ranges))
    if "systolic" not in doc and len(doc) == 3:
        doc["heart_rate"] = draw(measurements(HEART_RATE))
    if draw(bools):
        doc["position"] = draw(st.sampled_from(["sitting", "supine", "standing"]))
    return doc


# ---------------------------------------------------------------- medication review


@cache
def medication_documents() -> st.SearchStrategy[Doc]:
    return _document(
        name=texts,
        status=st.sampled_from(["active", "on_hold", "stopped"]),
        rxnorm=_optional(rxnorms),
        dose=_optional(texts),
        frequency=_optional(texts),
        instruction=_optional(st.sampled_from(["continue", "hold", "stop"])),
        note=_optional(texts),
    )


@cache
def allergy_documents() -> st.SearchStrategy[Doc]:
    return _document(
        substance=texts,
        reaction=_optional(texts),
        severity=_optional(st.sampled_from(SEVERITIES)),
        rxnorm=_optional(rxnorms),
    )


def medication_review_documents(
    providers: Sequence[str | Provider | Doc] = (),
) -> st.SearchStrategy[Doc]:
    return _document(
        review_id=ids,
        reviewed_at=date_times(),
        reviewed_by=_reference(providers),
        medications=st.lists(medication_documents(), max_size=4),
        allergies=_optional(st.lists(allergy_documents(), max_size=3)),
        notes=_optional(texts),
    )


# ---------------------------------------------------------------- encounter


@st.composite
def encounter_documents(draw: st.DrawFn) -> Doc:
    """A whole `POST /clinic/encounters` document, every cross-field rule honoured."""
    start = draw(instants)
    staff = draw(
        _optional(st.lists(provider_documents(), max_size=3, unique_by=lambda p: p["provider_id"]))
    )
    known = staff or []
    doc: Doc = {
        "encounter_id": draw(ids),
        "patient": draw(patient_documents()),
        "status": draw(st.sampled_from(["planned", "in-progress", "finished", "cancelled"])),
        "start": render(start, draw(offsets)),
        "reason": draw(_optional(indication_documents())),
        "providers": staff,
        "intake_screening": draw(_optional(intake_screening_documents())),
        "infusion": draw(_optional(infusion_documents(known, around=start))),
        "vitals": draw(
            _optional(st.lists(vitals_documents(), max_size=5, unique_by=lambda v: v["vitals_id"]))
        ),
        "medication_review": draw(_optional(medication_review_documents(known))),
    }
    if draw(bools):
        # after everything the infusion may have stamped (start + 30 + 120 + 120 minutes)
        _, doc["end"] = _draw_time(draw, start + timedelta(minutes=300), 600)
    doc.update(draw(care_documents(_drop_none(doc), start)))
    return _drop_none(doc)


def encounter_submissions() -> st.SearchStrategy[EncounterSubmission]:
    return encounter_documents().map(EncounterSubmission.model_validate)


def patients() -> st.SearchStrategy[Patient]:
    return patient_documents().map(Patient.model_validate)


def providers() -> st.SearchStrategy[Provider]:
    return provider_documents().map(Provider.model_validate)


def intake_screenings() -> st.SearchStrategy[IntakeScreening]:
    return intake_screening_documents().map(IntakeScreening.model_validate)


def infusion_procedures(
    providers: Sequence[str | Provider | Doc] = (),
) -> st.SearchStrategy[InfusionProcedure]:
    return infusion_documents(providers).map(InfusionProcedure.model_validate)


def vitals_observations() -> st.SearchStrategy[VitalsObservation]:
    return vitals_documents().map(VitalsObservation.model_validate)


def medication_reviews(
    providers: Sequence[str | Provider | Doc] = (),
) -> st.SearchStrategy[MedicationReview]:
    return medication_review_documents(providers).map(MedicationReview.model_validate)
