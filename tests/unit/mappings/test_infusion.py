from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.common import identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure, Provider
from mappings.infusion.procedure import map_infusion, unmap_infusion
from tests.unit.mappings.fhircheck import (
    EXAMPLE_NAMES,
    assert_golden,
    assert_model_equivalent,
    load_example,
)
from tests.unit.mappings.strategies import infusion_procedures

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
GOLDEN = Path(__file__).parent / "golden" / "infusion"
PROVIDERS = (
    Provider(provider_id="PRV-1", name="Dr. A", role="anesthesiologist"),
    Provider(provider_id="PRV-2", name="B, RN", role="registered_nurse"),
)
SCOPE = EncounterScope("ENC-1", "MRN-1", PROVIDERS)
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

Res = dict[str, Any]

BASE: dict[str, Any] = {
    "procedure_id": "INF-1",
    "medication": "ketamine",
    "route": "intravenous",
    "status": "completed",
    "start": "2026-11-20T09:10:00-05:00",
    "end": "2026-11-20T09:52:00-05:00",
    "weight": {"value": 68.0, "unit": "kg"},
    "dose_mg_per_kg": 0.5,
    "total_dose_mg": 34.0,
}


def _record(**changes: Any) -> InfusionProcedure:
    doc = {**BASE, **changes}
    return InfusionProcedure.model_validate({k: v for k, v in doc.items() if v is not None})


def _map(record: InfusionProcedure, scope: EncounterScope = SCOPE) -> list[Res]:
    return map_infusion(record, scope, CTX)


def _one(resources: list[Res], resource_type: str) -> Res:
    (found,) = [r for r in resources if r["resourceType"] == resource_type]
    return found


def _ketamine(resources: list[Res]) -> Res:
    ident = identity.infusion_administration(CTX, resources[0]["identifier"][0]["value"])
    (found,) = [r for r in resources if r["id"] == ident.id]
    return found


def _adjuncts(resources: list[Res]) -> list[Res]:
    return [
        r
        for r in resources
        if r["resourceType"] == "MedicationAdministration"
        and r["identifier"][0]["system"].endswith("/sid/infusion-adjunct")
    ]


def _codes(concept: Res) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] != CTX.code_system]


def _round_trip(record: InfusionProcedure, scope: EncounterScope = SCOPE) -> None:
    resources = _map(record, scope)
    for res in resources:
        assert_model_equivalent(res)
    assert unmap_infusion(resources, scope, CTX) == record


def _example(name: str) -> tuple[InfusionProcedure, EncounterScope]:
    sub = load_example(name)
    assert sub.infusion is not None
    scope = EncounterScope(sub.encounter_id, sub.patient.mrn, tuple(sub.providers or ()))
    return sub.infusion, scope


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_infusion__examples__match_golden(name: str) -> None:
    record, scope = _example(name)
    assert_golden(GOLDEN / f"{name}.json", _map(record, scope))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_infusion__examples__models_accept_and_round_trip(name: str) -> None:
    record, scope = _example(name)
    _round_trip(record, scope)


def test_map_infusion__typical__resources_in_order_with_shared_identities() -> None:
    record, scope = _example("typical-ketamine-infusion")
    resources = _map(record, scope)
    kinds = [r["resourceType"] for r in resources]
    assert kinds == [
        "Procedure",
        "MedicationRequest",
        "MedicationAdministration",
        "MedicationAdministration",
        "AdverseEvent",
        "AdverseEvent",
    ]
    key = "ENC-2026-1120-001~INF-55031"
    assert resources[0]["identifier"][0]["value"] == key
    assert resources[0]["id"] == identity.infusion_procedure(CTX, key).id
    assert resources[1]["id"] == identity.infusion_request(CTX, key).id
    assert resources[2]["id"] == identity.infusion_administration(CTX, key).id
    assert all(r["meta"]["security"][0]["code"] == "R" for r in resources)


def test_map_infusion__typical__procedure_iv_infusion_with_performers() -> None:
    record, scope = _example("typical-ketamine-infusion")
    procedure = _map(record, scope)[0]
    assert procedure["status"] == "completed"
    assert _codes(procedure["code"]) == ["14152002", "96365"]
    assert procedure["usedCode"][0]["coding"][0]["code"] == "6130"
    assert procedure["performedPeriod"] == {
        "start": "2026-11-20T09:10:00-05:00",
        "end": "2026-11-20T09:52:00-05:00",
    }
    actors = [(p["function"]["coding"][0]["code"], p["actor"]) for p in procedure["performer"]]
    assert actors == [
        (
            "infusion-administered-by",
            {
                "reference": identity.practitioner(CTX, "PRV-07").reference,
                "identifier": identity.practitioner(CTX, "PRV-07").identifier(),
                "display": "Dr. Samuel Lee",
            },
        ),
        (
            "infusion-monitored-by",
            {
                "reference": identity.practitioner(CTX, "PRV-12").reference,
                "identifier": identity.practitioner(CTX, "PRV-12").identifier(),
                "display": "Jordan Patel, RN",
            },
        ),
    ]
    recovery = procedure["extension"][0]
    assert recovery["url"] == CTX.extension_url("recovery-end")
    assert recovery["valueDateTime"] == "2026-11-20T10:20:00-05:00"


def test_map_infusion__weight_based__request_orders_mg_per_kg_and_calculates_mg() -> None:
    request = _one(_map(_record()), "MedicationRequest")
    assert request["status"] == "completed"
    assert request["intent"] == "order"
    instruction = request["dosageInstruction"][0]
    assert instruction["text"] == "0.5 mg/kg × 68 kg = 34 mg"
    assert _codes(instruction["route"]) == ["47625008"]
    doses = [
        (d["type"]["coding"][0]["code"], d["doseQuantity"]) for d in instruction["doseAndRate"]
    ]
    ucum = "http://unitsofmeasure.org"
    assert doses == [
        ("ordered", {"value": 0.5, "unit": "mg/kg", "system": ucum, "code": "mg/kg"}),
        ("calculated", {"value": 34, "unit": "mg", "system": ucum, "code": "mg"}),
    ]
    weight = request["extension"][0]
    assert weight["url"] == CTX.extension_url("dosing-weight")
    assert weight["valueQuantity"] == {"value": 68, "unit": "kg", "system": ucum, "code": "kg"}


def test_map_infusion__weight_in_pounds__kept_as_lb_av_and_round_trips() -> None:
    record = _record(weight={"value": 150, "unit": "lb"}, total_dose_mg=34.02)
    weight = _one(_map(record), "MedicationRequest")["extension"][0]["valueQuantity"]
    assert (weight["value"], weight["unit"], weight["code"]) == (150, "lb", "[lb_av]")
    _round_trip(record)


def test_map_infusion__completed__administration_carries_dose_and_links() -> None:
    resources = _map(_record(administered_by="PRV-1", monitored_by="PRV-2"))
    given = _ketamine(resources)
    assert given["status"] == "completed"
    assert given["partOf"] == [identity.infusion_procedure(CTX, "ENC-1~INF-1").ref()]
    assert given["request"] == identity.infusion_request(CTX, "ENC-1~INF-1").ref()
    assert given["context"] == identity.encounter(CTX, "ENC-1").ref()
    assert given["subject"] == identity.patient(CTX, "MRN-1").ref()
    assert given["effectivePeriod"]["end"] == "2026-11-20T09:52:00-05:00"
    assert given["dosage"]["dose"]["value"] == 34
    assert given["category"]["coding"][0]["code"] == "outpatient"
    (performer,) = given["performer"]
    assert performer["function"]["coding"][0]["code"] == "performer"
    assert performer["actor"]["identifier"]["value"] == "PRV-1"


def test_map_infusion__esketamine__nasal_spray_codes_and_fixed_dose() -> None:
    record, scope = _example("esketamine-session")
    resources = _map(record, scope)
    procedure, request = resources[0], resources[1]
    assert _codes(procedure["code"]) == ["18629005"]
    assert _codes(request["medicationCodeableConcept"]) == ["2201623", "2201625"]
    assert "extension" not in request
    (dose,) = request["dosageInstruction"][0]["doseAndRate"]
    assert dose["type"]["coding"][0]["code"] == "ordered"
    assert dose["doseQuantity"]["value"] == 56
    assert _codes(_ketamine(resources)["dosage"]["route"]) == ["46713006"]


def test_map_infusion__intramuscular__drug_administration_code_and_im_route() -> None:
    resources = _map(_record(route="intramuscular"))
    assert procedure_code_keys(resources[0]) == ["infusion-procedure-intramuscular"]
    assert _codes(_ketamine(resources)["dosage"]["route"]) == ["78421000"]
    _round_trip(_record(route="intramuscular"))


def procedure_code_keys(procedure: Res) -> list[str]:
    return [c["code"] for c in procedure["code"]["coding"] if c["system"] == CTX.code_system]


# ---------------------------------------------------------------- status


def test_map_infusion__stopped__stopped_everywhere_and_no_dose_claimed() -> None:
    record, scope = _example("stopped-infusion")
    resources = _map(record, scope)
    reason = "blood pressure rose to 186/112 mmHg; infusion stopped at 18 minutes"
    procedure, request, given = resources[0], resources[1], _ketamine(resources)
    assert (procedure["status"], request["status"], given["status"]) == ("stopped",) * 3
    assert procedure["statusReason"] == {"text": reason}
    assert request["statusReason"] == {"text": reason}
    assert given["statusReason"] == [{"text": reason}]
    assert "dosage" not in given  # R4 mad-1: a dosage needs a dose or rate


def test_map_infusion__not_done_without_start__no_administration_request_cancelled() -> None:
    record = _record(status="not_done", status_reason="BP 190/115", start=None, end=None)
    resources = _map(record)
    assert [r["resourceType"] for r in resources] == ["Procedure", "MedicationRequest"]
    procedure, request = resources
    assert procedure["status"] == "not-done"
    assert procedure["statusReason"] == {"text": "BP 190/115"}
    assert "performedPeriod" not in procedure
    assert request["status"] == "cancelled"
    _round_trip(record)


def test_map_infusion__not_done_with_start__administration_not_done() -> None:
    record = _record(status="not_done", status_reason="line failed", end=None)
    given = _ketamine(_map(record))
    assert given["status"] == "not-done"
    assert given["statusReason"] == [{"text": "line failed"}]
    assert given["effectivePeriod"] == {"start": "2026-11-20T09:10:00-05:00"}
    _round_trip(record)


def test_map_infusion__completed_with_reason__reason_only_on_procedure() -> None:
    record = _record(status_reason="rate reduced at 20 min")
    resources = _map(record)
    assert resources[0]["statusReason"] == {"text": "rate reduced at 20 min"}
    assert "statusReason" not in resources[1]
    assert "statusReason" not in _ketamine(resources)
    _round_trip(record)


def test_map_infusion__not_done_adverse_event__suspect_is_the_procedure() -> None:
    event = {"type": "hypertension", "severity": "severe"}
    record = _record(
        status="not_done", status_reason="x", start=None, end=None, adverse_events=[event]
    )
    adverse = _one(_map(record), "AdverseEvent")
    suspect = adverse["suspectEntity"][0]["instance"]
    assert suspect == identity.infusion_procedure(CTX, "ENC-1~INF-1").ref()


# ---------------------------------------------------------------- adjuncts


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("ondansetron", ["26225"]),
        ("Midazolam", ["6960"]),
        (" LORAZEPAM ", ["6470"]),
        ("labetalol", ["6185"]),
        ("ketamine", ["6130"]),
        ("Esketamine", ["2201623", "2201625"]),
        ("diphenhydramine", []),
    ],
)
def test_map_adjunct__by_name__table_codes_else_text_only(name: str, codes: list[str]) -> None:
    adjunct = {"name": name, "dose_mg": 4, "route": "oral", "given_at": BASE["start"]}
    record = _record(adjunct_medications=[adjunct])
    (given,) = _adjuncts(_map(record))
    drug = given["medicationCodeableConcept"]
    assert _codes(drug) == codes
    assert drug["text"] == name
    assert not any(c.get("userSelected") for c in drug.get("coding", []))
    _round_trip(record)


def test_map_adjunct__clinic_rxnorm__wins_and_marked_user_selected() -> None:
    adjunct = {
        "name": "ondansetron",
        "dose_mg": 4,
        "route": "intravenous",
        "given_at": BASE["start"],
        "rxnorm": "312086",
    }
    record = _record(adjunct_medications=[adjunct])
    (given,) = _adjuncts(_map(record))
    assert given["medicationCodeableConcept"]["coding"] == [
        {"system": RXNORM, "code": "312086", "userSelected": True}
    ]
    _round_trip(record)


@pytest.mark.parametrize(
    ("route", "snomed"),
    [
        ("intravenous", "47625008"),
        ("intranasal", "46713006"),
        ("intramuscular", "78421000"),
        ("oral", "26643006"),
        ("subcutaneous", "34206005"),
        ("sublingual", "37839007"),
    ],
)
def test_map_adjunct__each_route__snomed_route_and_round_trip(route: str, snomed: str) -> None:
    adjunct = {"name": "x", "dose_mg": 2.5, "route": route, "given_at": "2026-11-20T09:30:00Z"}
    record = _record(adjunct_medications=[adjunct])
    (given,) = _adjuncts(_map(record))
    assert _codes(given["dosage"]["route"]) == [snomed]
    assert given["dosage"]["dose"]["value"] == 2.5
    assert given["effectiveDateTime"] == "2026-11-20T09:30:00Z"
    assert given["partOf"] == [identity.infusion_procedure(CTX, "ENC-1~INF-1").ref()]
    _round_trip(record)


def test_map_adjuncts__several__identified_by_position_and_kept_in_order() -> None:
    names = ["c", "a", "b"]
    adjuncts = [
        {"name": n, "dose_mg": 1, "route": "oral", "given_at": BASE["start"]} for n in names
    ]
    record = _record(adjunct_medications=adjuncts)
    resources = _map(record)
    assert [a["identifier"][0]["value"] for a in _adjuncts(resources)] == [
        "ENC-1~INF-1~1",
        "ENC-1~INF-1~2",
        "ENC-1~INF-1~3",
    ]
    assert unmap_infusion(list(reversed(resources)), SCOPE, CTX) == record


# ---------------------------------------------------------------- adverse events


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("nausea", ["422587007", "R11.0"]),
        ("vomiting", ["422400008", "R11.10"]),
        ("dissociation", []),
        ("hypertension", ["24184005", "R03.0"]),
        ("tachycardia", ["3424008", "R00.0"]),
        ("hallucination", ["7011001", "R44.3"]),
        ("emergence_reaction", []),
        ("oxygen_desaturation", ["389087006", "R09.02"]),
        ("excessive_sedation", []),
    ],
)
def test_map_adverse_event__each_type__coded_with_local_code(kind: str, codes: list[str]) -> None:
    record = _record(adverse_events=[{"type": kind, "severity": "mild"}])
    adverse = _one(_map(record), "AdverseEvent")
    assert _codes(adverse["event"]) == codes
    local = [c["code"] for c in adverse["event"]["coding"] if c["system"] == CTX.code_system]
    assert local == ["adverse-event-" + kind.replace("_", "-")]
    assert adverse["actuality"] == "actual"
    _round_trip(record)


def test_map_adverse_event__other__local_code_and_text() -> None:
    record = _record(adverse_events=[{"type": "other", "text": "headache", "severity": "mild"}])
    event = _one(_map(record), "AdverseEvent")["event"]
    assert event["coding"][0]["code"] == "adverse-event-other"
    assert event["text"] == "headache"
    _round_trip(record)


@pytest.mark.parametrize("severity", ["mild", "moderate", "severe"])
def test_map_adverse_event__each_severity__adverse_event_severity_code(severity: str) -> None:
    record = _record(adverse_events=[{"type": "nausea", "severity": severity}])
    adverse = _one(_map(record), "AdverseEvent")
    coding = adverse["severity"]["coding"][0]
    assert coding["system"] == "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
    assert coding["code"] == severity
    _round_trip(record)


@pytest.mark.parametrize(
    ("resolved", "outcome"), [(True, "resolved"), (False, "ongoing"), (None, None)]
)
def test_map_adverse_event__resolved_true_false_unknown__outcome_round_trips(
    resolved: bool | None, outcome: str | None
) -> None:
    event = {"type": "nausea", "severity": "mild", "resolved": resolved}
    record = _record(adverse_events=[{k: v for k, v in event.items() if v is not None}])
    adverse = _one(_map(record), "AdverseEvent")
    got = adverse["outcome"]["coding"][0]["code"] if "outcome" in adverse else None
    assert got == outcome
    _round_trip(record)


def test_map_adverse_event__typical_nausea__dated_treated_suspect_ketamine() -> None:
    record, scope = _example("typical-ketamine-infusion")
    nausea = [r for r in _map(record, scope) if r["resourceType"] == "AdverseEvent"][0]
    assert nausea["identifier"] == {
        "system": "https://fhir.test-clinic.example/sid/infusion-adverse-event",
        "value": "ENC-2026-1120-001~INF-55031~1",
    }
    assert nausea["date"] == "2026-11-20T09:22:00-05:00"
    assert nausea["encounter"] == identity.encounter(CTX, "ENC-2026-1120-001").ref()
    assert nausea["extension"] == [
        {"url": CTX.extension_url("adverse-event-treatment"), "valueString": "ondansetron 4 mg IV"}
    ]
    suspect = nausea["suspectEntity"][0]["instance"]
    assert suspect == identity.infusion_administration(CTX, "ENC-2026-1120-001~INF-55031").ref()


# ---------------------------------------------------------------- lists, notes, scope


@pytest.mark.parametrize("field", ["adjunct_medications", "adverse_events"])
@pytest.mark.parametrize("value", [None, []])
def test_map_infusion__empty_list_and_absent__come_back_apart(
    field: str, value: list[object] | None
) -> None:
    _round_trip(_record(**{field: value}))


def test_map_infusion__notes__procedure_note_round_trips() -> None:
    record = _record(notes="patient tolerated well; music during infusion")
    assert _map(record)[0]["note"] == [{"text": "patient tolerated well; music during infusion"}]
    _round_trip(record)


def test_map_infusion__per_record_scope__no_provider_names_still_round_trips() -> None:
    scope = EncounterScope("ENC-1", "MRN-1")
    record = _record(administered_by="PRV-9", monitored_by="PRV-8")
    actor = _map(record, scope)[0]["performer"][0]["actor"]
    assert "display" not in actor
    _round_trip(record, scope)


def test_unmap_infusion__no_procedure__none() -> None:
    assert unmap_infusion([], SCOPE, CTX) is None


def test_unmap_infusion__procedure_of_another_encounter__ignored() -> None:
    other = EncounterScope("ENC-2", "MRN-1", PROVIDERS)
    encounter: Res = {
        "resourceType": "Encounter",
        "id": identity.encounter(CTX, "ENC-2").id,
        "identifier": [identity.encounter(CTX, "ENC-2").identifier()],
    }
    assert unmap_infusion([*_map(_record(), other), encounter], SCOPE, CTX) is None


# ---------------------------------------------------------------- as an EHR returns them


def _as_ehr_returns(resources: list[Res]) -> list[Res]:
    """Server ids, references rewritten to them, meta and narrative added, keys reordered."""
    new_ids = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{900 + i}"
        for i, r in enumerate(resources)
    }

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            items = [
                (k, new_ids.get(v, v) if k == "reference" else rewrite(v)) for k, v in value.items()
            ]
            return dict(reversed(items))
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    out = []
    for res in copy.deepcopy(resources):
        res = rewrite(res)
        res["id"] = new_ids[f"{res['resourceType']}/{res['id']}"].split("/")[1]
        res["meta"] = {"versionId": "4", "lastUpdated": "2026-11-23T10:00:00Z"}
        res["text"] = {"status": "generated", "div": "<div>...</div>"}
        out.append(res)
    return list(reversed(out))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_infusion__ehr_returned_copies__same_record(name: str) -> None:
    record, scope = _example(name)
    returned = _as_ehr_returns(_map(record, scope))
    assert unmap_infusion(returned, scope, CTX) == record


def test_unmap_infusion__ehr_reference_without_identifier__resolved_via_practitioner() -> None:
    record = _record(administered_by="PRV-1", monitored_by="PRV-2")
    resources = _map(record)
    for performer in resources[0]["performer"]:
        del performer["actor"]["identifier"]
    practitioners: list[Res] = [
        {
            "resourceType": "Practitioner",
            "id": identity.practitioner(CTX, p).id,
            "identifier": [identity.practitioner(CTX, p).identifier()],
        }
        for p in ("PRV-1", "PRV-2")
    ]
    assert unmap_infusion([*resources, *practitioners], SCOPE, CTX) == record


# ---------------------------------------------------------------- generated records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=infusion_procedures(PROVIDERS), per_record=st.booleans())
def test_map_infusion__generated_records__models_accept_and_round_trip(
    record: InfusionProcedure, per_record: bool
) -> None:
    scope = EncounterScope("ENC-1", "MRN-1") if per_record else SCOPE
    _round_trip(record, scope)
    returned = _as_ehr_returns(_map(record, scope))
    assert unmap_infusion(returned, scope, CTX) == record
