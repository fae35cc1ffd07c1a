"""Generated narratives: on every mapped resource, xhtml that parses, escaped, built from the
resource's own elements (no identifiers, no free text), and ignored by the reverse mappings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from mappings.common.narrative import XHTML, narrative_div, refreshed, with_narrative
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission, unmap_submission
from mappings.jsontypes import Resource
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, load_example

CTX = MappingContext(namespace="https://fhir.test-clinic.example")


def _mapped(name: str) -> list[Resource]:
    return map_submission(load_example(name), CTX)


def _div(res: Resource) -> str:
    text: Any = res["text"]
    return str(text["div"])


def _words(div: str) -> str:
    root = ET.fromstring(div)  # xhtml: well-formed XML, or the validator refuses it
    assert root.tag == f"{{{XHTML}}}div"
    return "".join(root.itertext())


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__every_resource__generated_narrative_after_meta(name: str) -> None:
    for res in _mapped(name):
        text: Any = res["text"]
        assert text["status"] == "generated"
        assert list(res)[:4] == ["resourceType", "id", "meta", "text"]
        assert _words(text["div"]).strip()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__narratives__hold_no_mrn_record_id_npi_or_logical_id(name: str) -> None:
    sub = load_example(name)
    ids = {sub.patient.mrn, sub.encounter_id, *(p.npi for p in sub.providers or () if p.npi)}
    for res in map_submission(sub, CTX):
        words = _words(_div(res))
        assert [i for i in (*ids, str(res["id"])) if i in words] == [], res["resourceType"]


def test_narrative__observation__says_its_code_value_interpretation_status_and_time() -> None:
    vitals = [r for r in _mapped("typical-ketamine-infusion") if r["resourceType"] == "Observation"]
    heart_rate = next(r for r in vitals if "Heart rate" in str(r["code"]))
    words = _words(_div(heart_rate))
    assert words == "Observation: Heart rate; 74 /min; Normal; final; 2026-11-20T09:02:00-05:00"


def test_narrative__markup_in_a_name__escaped() -> None:
    patient: Resource = {
        "resourceType": "Patient",
        "name": [{"family": "<script>alert('x')</script>", "given": ["A&B"]}],
    }
    div = narrative_div(patient)
    assert "<script>" not in div
    assert _words(div) == "Patient: A&B <script>alert('x')</script>"


def test_narrative__free_text__left_out() -> None:
    procedure: Resource = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"text": "Medication reconciliation"},
        "note": [{"text": "patient disclosed something private"}],
        "statusReason": {"text": "another private remark"},
    }
    assert _words(narrative_div(procedure)) == "Procedure: Medication reconciliation; completed"


def test_narrative__coded_display_preferred_to_the_senders_text() -> None:
    condition: Resource = {
        "resourceType": "Condition",
        "code": {
            "coding": [{"code": "F33.2"}, {"code": "x", "display": "Depression"}],
            "text": "t",
        },
    }
    assert _words(narrative_div(condition)) == "Condition: Depression"


def test_with_narrative__replaces_a_narrative_already_there() -> None:
    res: Resource = {"resourceType": "Flag", "id": "f", "text": {"status": "additional"}}
    assert with_narrative(res)["text"] == {"status": "generated", "div": narrative_div(res)}


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (None, False),
        ({"status": "generated", "div": "<div>old</div>"}, False),
        ({"status": "additional", "div": "<div>a person's</div>"}, True),
    ],
)
def test_refreshed__generated_or_none_made_anew__written_by_a_person_kept(
    text: dict[str, str] | None, kept: bool
) -> None:
    res: Resource = {"resourceType": "Flag", "id": "f", "status": "inactive"}
    if text is not None:
        res["text"] = dict(text)
    assert (refreshed(res)["text"] == text) is kept


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_submission__narratives_dropped_or_rewritten__same_record(name: str) -> None:
    resources = _mapped(name)
    dropped = [{k: v for k, v in r.items() if k != "text"} for r in resources]
    theirs: Resource = {"status": "generated", "div": "<div>EHR</div>"}
    rewritten: list[Resource] = [{**r, "text": theirs} for r in resources]
    expected = unmap_submission(resources, CTX)
    assert expected == load_example(name)
    assert unmap_submission(dropped, CTX) == expected
    assert unmap_submission(rewritten, CTX) == expected
