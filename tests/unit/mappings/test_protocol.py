"""The clinic's protocol: its shipped defaults, a tenant's override, and every rule at its
edges — just inside, just outside and far outside — in both severities (refused, or a
DetectedIssue / Flag for a clinician)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure, Provider, VitalsObservation
from mappings.infusion import map_infusion
from mappings.protocol import (
    ProtocolError,
    default_protocol,
    findings,
    forbidden,
    load_protocol,
)
from mappings.vitals import map_vitals
from tests.unit.mappings.fhircheck import assert_model_equivalent

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
Res = dict[str, Any]
ACLS = Provider.model_validate(
    {"provider_id": "RN-1", "name": "A", "role": "registered_nurse", "acls_certified": True}
)
NO_ACLS = Provider.model_validate(
    {"provider_id": "RN-2", "name": "B", "role": "registered_nurse", "acls_certified": False}
)
UNKNOWN_ACLS = Provider.model_validate({"provider_id": "RN-3", "name": "C", "role": "physician"})


def _ketamine(**fields: Any) -> InfusionProcedure:
    doc: dict[str, Any] = {
        "procedure_id": "INF-1",
        "medication": "ketamine",
        "route": "intravenous",
        "status": "completed",
        "start": "2026-11-20T09:10:00-05:00",
        "end": "2026-11-20T09:50:00-05:00",
        "recovery_end": "2026-11-20T10:20:00-05:00",
        "weight": {"value": 100, "unit": "kg"},
        "dose_mg_per_kg": 0.5,
        "total_dose_mg": 50,
        "monitored_by": "RN-1",
    }
    return InfusionProcedure.model_validate({**doc, **fields})


def _per_kg(dose: float) -> InfusionProcedure:
    """`dose` mg/kg for a 100 kg patient (the total agrees, so only the rule speaks)."""
    return _ketamine(dose_mg_per_kg=dose, total_dose_mg=round(dose * 100, 6))


def _esketamine(total: float, status: str = "completed", **fields: Any) -> InfusionProcedure:
    doc: dict[str, Any] = {
        "procedure_id": "SPR-1",
        "medication": "esketamine",
        "route": "intranasal",
        "status": status,
        "start": "2026-11-21T13:10:00Z",
        "end": "2026-11-21T13:20:00Z",
        "recovery_end": "2026-11-21T15:10:00Z",
        "total_dose_mg": total,
    }
    if status != "completed":
        doc["status_reason"] = "patient asked to stop"
    return InfusionProcedure.model_validate({**doc, **fields})


def _rules(infusion: InfusionProcedure, providers: tuple[Provider, ...] = (ACLS,)) -> list[str]:
    return [f"{f.rule}:{f.field}" for f in findings(infusion, providers, default_protocol())]


def _refused(infusion: InfusionProcedure) -> list[str]:
    return [e.path for e in forbidden(infusion, default_protocol(), "infusion.")]


# ---------------------------------------------------------------- the shipped defaults


def test_default_protocol__every_rule__names_its_source() -> None:
    protocol = default_protocol()
    rules: list[Any] = [
        *(r for by_route in protocol.doses.values() for r in by_route.values()),
        *protocol.observation.values(),
        *protocol.monitor.values(),
        protocol.fasting,
        *protocol.vitals.values(),
    ]
    for rule in rules:
        assert rule.source.split(":")[0] in {"label", "REMS", "clinic"}, rule


def test_default_protocol__holds_the_label_and_rems_rules() -> None:
    protocol = default_protocol()
    esketamine = protocol.dose_rule("esketamine", "intranasal")
    assert esketamine is not None
    assert esketamine.allowed_total_mg == (56, 84)
    observation = protocol.observation_rule("esketamine")
    assert observation is not None
    assert (observation.minimum_minutes, observation.measured_from) == (120, "start")
    monitor = protocol.monitor_rule("ketamine")
    assert monitor is not None
    assert monitor.required_qualification == "acls"
    assert protocol.npo_hours == 6
    assert protocol.vitals_for("pre_infusion").systolic_critical == 180


# ---------------------------------------------------------------- dose per kg (IV)


@pytest.mark.parametrize(
    ("dose", "issue", "refused"),
    [
        (0.5, False, False),
        (1.0, False, False),  # just inside the usual maximum
        (1.01, True, False),  # just outside it: a clinician looks
        (1.9, True, False),  # far outside the usual, still under the hard ceiling
        (2.0, True, False),  # just inside the hard ceiling
        (2.01, True, True),  # just outside it: refused
        (5.0, True, True),  # far outside (the issue's example: 340 mg for 68 kg)
    ],
)
def test_dose_per_kg__usual_and_hard_ceilings(dose: float, issue: bool, refused: bool) -> None:
    infusion = _per_kg(dose)
    assert ("dose-above-usual:dose_mg_per_kg" in _rules(infusion)) == issue
    assert ("infusion.dose_mg_per_kg" in _refused(infusion)) == refused


def test_dose_per_kg__refusal__names_field_rule_and_source() -> None:
    (error, *_) = forbidden(_per_kg(5.0), default_protocol(), "infusion.")
    assert error.path == "infusion.dose_mg_per_kg"
    assert "5 mg/kg is above the hard ceiling of 2 mg/kg" in error.message
    assert "doses.ketamine.intravenous.hard_max_mg_per_kg" in error.message
    assert "source: clinic" in error.message


# ---------------------------------------------------------------- total dose


@pytest.mark.parametrize(
    ("total", "issue", "refused"),
    [(100, False, False), (100.5, True, False), (199, True, False), (200, True, False),
     (200.5, True, True), (1000, True, True)],
)  # fmt: skip
def test_total_dose__intranasal_ketamine__usual_and_hard_ceilings(
    total: float, issue: bool, refused: bool
) -> None:
    infusion = _ketamine(route="intranasal", weight=None, dose_mg_per_kg=None, total_dose_mg=total)
    assert ("dose-above-usual:total_dose_mg" in _rules(infusion)) == issue
    assert ("infusion.total_dose_mg" in _refused(infusion)) == refused


@pytest.mark.parametrize(
    ("total", "issue", "refused"),
    [(100, False, False), (101, True, False), (200, True, False), (201, True, True),
     (500, True, True)],
)  # fmt: skip
def test_total_dose__intramuscular__usual_and_hard_ceilings(
    total: float, issue: bool, refused: bool
) -> None:
    infusion = _ketamine(
        route="intramuscular",
        weight={"value": 250, "unit": "kg"},
        dose_mg_per_kg=total / 250,
        total_dose_mg=total,
    )
    assert ("dose-above-usual:total_dose_mg" in _rules(infusion)) == issue
    assert ("infusion.total_dose_mg" in _refused(infusion)) == refused


# ---------------------------------------------------------------- esketamine doses (label)


@pytest.mark.parametrize(
    ("total", "status", "refused"),
    [
        (56, "completed", False),
        (84, "completed", False),
        (57, "completed", True),  # just outside an allowed dose
        (83.5, "completed", True),
        (200, "completed", True),  # far outside: the issue's example
        (28, "stopped", False),  # stopped after one device
        (84, "stopped", False),
        (85, "stopped", True),  # more than the largest allowed dose
        (200, "stopped", True),
    ],
)
def test_esketamine_dose__only_the_label_doses(total: float, status: str, refused: bool) -> None:
    errors = forbidden(_esketamine(total, status), default_protocol(), "infusion.")
    assert bool(errors) == refused
    for error in errors:
        assert error.path == "infusion.total_dose_mg"
        assert "doses.esketamine.intranasal.allowed_total_mg" in error.message
        assert "source: label" in error.message


# ---------------------------------------------------------------- observation time


@pytest.mark.parametrize(
    ("recovery_end", "short"),
    [
        ("2026-11-20T10:10:00-05:00", False),  # 20 minutes after the end: just inside
        ("2026-11-20T10:09:59-05:00", True),  # a second short
        ("2026-11-20T09:55:00-05:00", True),  # 5 minutes: far outside
    ],
)
def test_observation__ketamine_from_end_of_dosing(recovery_end: str, short: bool) -> None:
    assert ("observation-short:recovery_end" in _rules(_ketamine(recovery_end=recovery_end))) == (
        short
    )


@pytest.mark.parametrize(
    ("recovery_end", "short"),
    [
        ("2026-11-21T15:10:00Z", False),  # 120 minutes after the dose: the REMS minimum
        ("2026-11-21T15:09:00Z", True),  # 119 minutes
        ("2026-11-21T13:30:00Z", True),  # 20 minutes: the issue's example
    ],
)
def test_observation__esketamine_two_hours_from_dosing_rems(recovery_end: str, short: bool) -> None:
    found = findings(_esketamine(56, recovery_end=recovery_end), (), default_protocol())
    assert [f.rule for f in found] == (["observation-short"] if short else [])
    for finding in found:
        assert finding.severity == "high"
        assert "REMS" in finding.detail
        assert "at least 120 minutes" in finding.detail


def test_observation__no_recovery_end__not_judged() -> None:
    assert _rules(_ketamine(recovery_end=None)) == []


# ---------------------------------------------------------------- the monitor's ACLS


@pytest.mark.parametrize(
    ("provider", "issue"), [(ACLS, False), (NO_ACLS, True), (UNKNOWN_ACLS, True)]
)
def test_monitor__ketamine_without_acls__issue(provider: Provider, issue: bool) -> None:
    infusion = _ketamine(monitored_by=provider.provider_id)
    assert ("monitor-not-qualified:monitored_by" in _rules(infusion, (provider,))) == issue


def test_monitor__esketamine__acls_only_when_the_clinic_asks() -> None:
    infusion = _esketamine(56, monitored_by="RN-2")
    assert findings(infusion, (NO_ACLS,), default_protocol()) == []
    strict = load_protocol(
        '[monitor.esketamine]\nrequired_qualification = "acls"\nsource = "clinic: ours"\n'
    )
    assert [f.rule for f in findings(infusion, (NO_ACLS,), strict)] == ["monitor-not-qualified"]


# ---------------------------------------------------------------- the DetectedIssues


def test_map_infusion__each_finding__a_detected_issue_coded_by_its_rule() -> None:
    infusion = _ketamine(
        dose_mg_per_kg=1.5,
        total_dose_mg=150,
        recovery_end="2026-11-20T09:55:00-05:00",
        monitored_by="RN-2",
    )
    scope = EncounterScope("ENC-1", "MRN-1", (NO_ACLS,), infusion)
    mapped = cast(list[Res], map_infusion(infusion, scope, CTX))
    issues = [r for r in mapped if r["resourceType"] == "DetectedIssue"]
    codes = {r["code"]["coding"][-1]["code"]: r for r in issues}
    assert set(codes) == {
        "protocol-dose-above-usual",
        "protocol-observation-short",
        "protocol-monitor-not-qualified",
    }
    assert len(issues) == 4  # the dose per kg and the total each break a usual maximum
    dose = codes["protocol-dose-above-usual"]
    assert dose["code"]["coding"][0]["code"] == "DOSEH"
    assert dose["severity"] == "moderate"
    assert dose["implicated"][0]["reference"].startswith("MedicationAdministration/")
    monitor = codes["protocol-monitor-not-qualified"]
    assert monitor["implicated"][-1]["reference"].startswith("Practitioner/")
    assert "ACLS" in monitor["detail"]
    for issue in issues:
        assert issue["meta"]["security"]
        assert_model_equivalent(issue)


# ---------------------------------------------------------------- vital signs per phase


def _flags(reading: dict[str, Any], protocol: Any = None) -> list[str]:
    ctx = CTX if protocol is None else MappingContext(namespace=CTX.namespace, protocol=protocol)
    doc = {"vitals_id": "VS-1", "taken_at": "2026-11-20T09:30:00-05:00", **reading}
    mapped = map_vitals([VitalsObservation.model_validate(doc)], EncounterScope("E", "M"), ctx)
    out = cast(list[Res], mapped)
    return [r["code"]["coding"][0]["code"] for r in out if r["resourceType"] == "Flag"]


def _bp(systolic: float, diastolic: float = 80) -> dict[str, Any]:
    return {
        "systolic": {"value": systolic, "unit": "mmHg"},
        "diastolic": {"value": diastolic, "unit": "mmHg"},
    }


@pytest.mark.parametrize(("systolic", "flag"), [(179, False), (180, True), (250, True)])
def test_vitals__pre_infusion_hypertension_limit__critical_flag(
    systolic: float, flag: bool
) -> None:
    found = _flags({"phase": "pre_infusion", **_bp(systolic)})
    assert found == (["flag-critical-blood-pressure"] if flag else [])


@pytest.mark.parametrize("phase", ["intra_infusion", "post_infusion"])
@pytest.mark.parametrize(("spo2", "flag"), [(90, False), (89, True), (70, True)])
def test_vitals__spo2_during_infusion_and_recovery__critical_flag(
    phase: str, spo2: float, flag: bool
) -> None:
    found = _flags({"phase": phase, "spo2": {"value": spo2, "unit": "%"}})
    assert found == (["flag-critical-oxygen-saturation"] if flag else [])


@pytest.mark.parametrize("phase", ["intra_infusion", "discharge"])
@pytest.mark.parametrize(
    ("rate", "flag"), [(129, False), (130, True), (200, True), (41, False), (39, True), (25, True)]
)
def test_vitals__heart_rate_during_infusion_and_recovery__critical_flag(
    phase: str, rate: float, flag: bool
) -> None:
    found = _flags({"phase": phase, "heart_rate": {"value": rate, "unit": "/min"}})
    assert found == (["flag-critical-heart-rate"] if flag else [])


def test_vitals__limits_per_phase__an_override_changes_one_phase_only() -> None:
    protocol = load_protocol(
        '[vitals.intra_infusion]\nspo2_critical_low = 92\nsource = "clinic: x"\n'
    )
    intra = {"phase": "intra_infusion", "spo2": {"value": 91, "unit": "%"}}
    recovery = {"phase": "post_infusion", "spo2": {"value": 91, "unit": "%"}}
    assert _flags(intra, protocol) == ["flag-critical-oxygen-saturation"]
    assert _flags(recovery, protocol) == []


def test_vitals__critical_flag__points_at_its_observation_and_validates() -> None:
    doc = {"vitals_id": "VS-1", "taken_at": "2026-11-20T09:30:00-05:00", "phase": "intra_infusion"}
    reading = VitalsObservation.model_validate({**doc, **_bp(186, 112)})
    out = cast(list[Res], map_vitals([reading], EncounterScope("E", "M"), CTX))
    (flag,) = [r for r in out if r["resourceType"] == "Flag"]
    bp = next(r for r in out if r.get("code", {}).get("coding", [{}])[0].get("code") == "85354-9")
    assert flag["extension"][0]["valueReference"] == {"reference": f"Observation/{bp['id']}"}
    assert flag["status"] == "active"
    assert flag["period"] == {"start": "2026-11-20T09:30:00-05:00"}
    assert flag["code"]["text"] == (
        "Critical blood pressure (critical high): 186/112 mmHg, intra_infusion reading"
        " (protocol vitals.intra_infusion)"
    )
    assert_model_equivalent(flag)


# ---------------------------------------------------------------- overrides


def test_load_protocol__override__changes_only_what_it_names() -> None:
    protocol = load_protocol(
        '[doses.ketamine.intravenous]\nusual_max_mg_per_kg = 0.75\nsource = "clinic: ours"\n'
    )
    rule = protocol.dose_rule("ketamine", "intravenous")
    assert rule is not None
    assert (rule.usual_max_mg_per_kg, rule.hard_max_mg_per_kg) == (0.75, 2.0)
    assert rule.source == "clinic: ours"
    assert protocol.npo_hours == default_protocol().npo_hours


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[doses.ketamine.intravenous]\nhard_max_mg_per_kg = "2"\nsource = "clinic: x"\n',
         "doses.ketamine.intravenous.hard_max_mg_per_kg"),
        ('[doses.ketamine.intravenous]\nusual_max_mg_per_kg = 3.0\nsource = "clinic: x"\n',
         "doses.ketamine.intravenous: usual_max_mg_per_kg (3) must not be above"),
        ("[fasting]\nnpo_hours = 8\n", "fasting.source: required"),
        ('[monitor.ketamine]\nrequired_qualification = "bls"\nsource = "clinic: x"\n',
         "monitor.ketamine.required_qualification"),
        ('[vitals.recovery]\nspo2_low = 85\nsource = "clinic: x"\n',
         "vitals.recovery: spo2_critical_low (90) must not be above spo2_low (85)"),
        ('[doses.ketamine.oral]\nhard_max_total_mg = 1\nsource = "clinic: x"\n',
         "doses.ketamine.oral"),
        ("[vitals.recovery]\nspo2_lo = 85\nsource = 'clinic: x'\n", "vitals.recovery.spo2_lo"),
        ("npo = [", "not valid TOML"),
    ],
)  # fmt: skip
def test_load_protocol__bad_override__error_names_file_and_entry(text: str, named: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text, origin="clinic-a.toml")
    assert caught.value.origin == "clinic-a.toml"
    assert named in str(caught.value)
    assert str(caught.value).startswith("clinic-a.toml: ")
