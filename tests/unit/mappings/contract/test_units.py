"""Measurements: allowed units per field, possible ranges per unit (converted)."""

from __future__ import annotations

import pytest

from mappings.contract import parse_submission
from tests.unit.mappings.contract.support import assert_only_error, example

ALLOWED_UNITS = [
    ("systolic", "mmHg"),
    ("diastolic", "mmHg"),
    ("heart_rate", "/min"),
    ("respiratory_rate", "/min"),
    ("spo2", "%"),
    ("temperature", "Cel, degF"),
    ("weight", "kg, lb"),
    ("height", "cm, in"),
]


@pytest.mark.parametrize(("field", "units"), ALLOWED_UNITS)
def test_vitals__unit_not_allowed_for_the_field__lists_the_allowed_units(
    field: str, units: str
) -> None:
    doc = example()
    doc["vitals"][0][field] = {"value": 50, "unit": "furlongs"}

    assert_only_error(doc, f"vitals[0].{field}.unit", f"must be one of: {units}")


@pytest.mark.parametrize(
    ("field", "value", "unit"),
    [
        ("heart_rate", 20, "/min"),
        ("heart_rate", 300, "/min"),
        ("respiratory_rate", 2, "/min"),
        ("respiratory_rate", 80, "/min"),
        ("spo2", 50, "%"),
        ("spo2", 100, "%"),
        ("temperature", 30, "Cel"),
        ("temperature", 45, "Cel"),
        ("temperature", 86, "degF"),
        ("temperature", 113, "degF"),
        ("weight", 1, "kg"),
        ("weight", 500, "kg"),
        ("weight", 1102, "lb"),
        ("height", 30, "cm"),
        ("height", 272, "cm"),
        ("height", 107, "in"),
        ("height", 11.82, "in"),
    ],
)
def test_vitals__value_at_the_edge_of_its_range__is_accepted(
    field: str, value: float, unit: str
) -> None:
    doc = example()
    doc["vitals"][0][field] = {"value": value, "unit": unit}

    vitals = parse_submission(doc).vitals
    assert vitals is not None


@pytest.mark.parametrize(
    ("field", "value", "unit", "message"),
    [
        ("heart_rate", 19, "/min", "heart_rate 19 /min is outside the possible range 20-300 /min"),
        (
            "heart_rate",
            301,
            "/min",
            "heart_rate 301 /min is outside the possible range 20-300 /min",
        ),
        (
            "respiratory_rate",
            1.5,
            "/min",
            "respiratory_rate 1.5 /min is outside the possible range 2-80",
        ),
        ("respiratory_rate", 81, "/min", "outside the possible range 2-80 /min"),
        ("spo2", 49, "%", "spo2 49 % is outside the possible range 50-100 %"),
        ("spo2", 101, "%", "spo2 101 % is outside"),
        (
            "temperature",
            29.9,
            "Cel",
            "temperature 29.9 Cel is outside the possible range 30-45 Cel",
        ),
        (
            "temperature",
            120,
            "degF",
            "temperature 120 degF (48.89 Cel) is outside the possible range 30-45 Cel",
        ),
        ("temperature", 37, "degF", "temperature 37 degF (2.78 Cel) is outside"),
        ("weight", 0.5, "kg", "weight 0.5 kg is outside the possible range 1-500 kg"),
        ("weight", 1103, "lb", "weight 1103 lb (500.31 kg) is outside the possible range 1-500 kg"),
        ("height", 273, "cm", "height 273 cm is outside the possible range 30-272 cm"),
        ("height", 11, "in", "height 11 in (27.94 cm) is outside the possible range 30-272 cm"),
    ],
)
def test_vitals__value_outside_the_range_for_its_unit__is_rejected(
    field: str, value: float, unit: str, message: str
) -> None:
    doc = example()
    doc["vitals"][0][field] = {"value": value, "unit": unit}

    assert_only_error(doc, f"vitals[0].{field}.value", message)


@pytest.mark.parametrize(("field", "value"), [("systolic", 301), ("diastolic", 19)])
def test_vitals__blood_pressure_outside_20_to_300__is_rejected(field: str, value: int) -> None:
    doc = example()
    doc["vitals"][0][field] = {"value": value, "unit": "mmHg"}

    assert_only_error(doc, f"vitals[0].{field}.value", "outside the possible range 20-300 mmHg")


def test_vitals__blood_pressure_in_kpa__is_rejected() -> None:
    doc = example()
    doc["vitals"][0]["systolic"] = {"value": 17, "unit": "kPa"}

    assert_only_error(doc, "vitals[0].systolic.unit", "must be one of: mmHg")


@pytest.mark.parametrize("value", ["98", True, None])
def test_measurement__value_not_a_number__is_rejected(value: object) -> None:
    doc = example()
    doc["vitals"][0]["heart_rate"]["value"] = value

    assert_only_error(doc, "vitals[0].heart_rate.value", "must")


def test_measurement__unknown_key__is_rejected() -> None:
    doc = example()
    doc["vitals"][0]["heart_rate"]["system"] = "http://unitsofmeasure.org"

    assert_only_error(doc, "vitals[0].heart_rate.system", "unknown field (not in contract v1)")


def test_measurement__without_unit__names_the_unit() -> None:
    doc = example()
    del doc["vitals"][0]["heart_rate"]["unit"]

    assert_only_error(doc, "vitals[0].heart_rate.unit", "required field is missing")


def test_infusion_weight__unit_not_kg_or_lb__is_rejected() -> None:
    doc = example()
    doc["infusion"]["weight"] = {"value": 68000, "unit": "g"}

    assert_only_error(doc, "infusion.weight.unit", "must be one of: kg, lb")


def test_infusion_weight__outside_1_to_500_kg__is_rejected() -> None:
    doc = example()
    doc["infusion"]["weight"] = {"value": 0.5, "unit": "kg"}

    assert_only_error(
        doc, "infusion.weight.value", "weight 0.5 kg is outside the possible range 1-500 kg"
    )
