"""A whole encounter: every resource valid for its model, deterministic, and reversible."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from mappings.common.bundle import transaction_bundle
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import map_submission, unmap_submission
from mappings.jsontypes import JsonValue
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, assert_model_equivalent, load_example
from tests.unit.mappings.jsonpick import at, objs_at, str_at
from tests.unit.mappings.strategies import encounter_submissions

CTX = MappingContext()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__shared_example__every_resource_is_what_its_r4_model_accepts(
    name: str,
) -> None:
    for res in map_submission(load_example(name), CTX):
        assert_model_equivalent(res)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__mapped_twice__byte_identical(name: str) -> None:
    sub = load_example(name)
    first: list[JsonValue] = [*map_submission(sub, CTX)]
    second: list[JsonValue] = [*map_submission(sub, CTX)]
    assert dumps(first) == dumps(second)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__every_internal_reference__points_at_a_mapped_resource(name: str) -> None:
    out = map_submission(load_example(name), CTX)
    known = {f"{r['resourceType']}/{r['id']}" for r in out}
    bundle = dumps(transaction_bundle(out, CTX)).decode()
    for key in known:
        assert f'"reference":"{key}"' not in bundle  # all rewritten to urn:uuid
    assert '"reference":"urn:uuid:' in bundle


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__every_resource__carries_security_labels(name: str) -> None:
    for res in map_submission(load_example(name), CTX):
        codes = {str_at(label, "code") for label in objs_at(res, "meta", "security")}
        assert {"R", "PSY", "BH"} <= codes, res["resourceType"]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_submission__shared_example__gives_back_the_same_submission(name: str) -> None:
    sub = load_example(name)
    assert unmap_submission(map_submission(sub, CTX), CTX) == sub


def test_map_submission__provenance__identity_in_extension_and_written_by_id() -> None:
    out = map_submission(load_example("typical-ketamine-infusion"), CTX)
    provenance = out[-1]
    assert provenance["resourceType"] == "Provenance"
    assert "identifier" not in provenance
    entry = at(transaction_bundle(out, CTX), "entry", -1)
    assert at(entry, "request", "url") == f"Provenance/{provenance['id']}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sub=encounter_submissions())
def test_map_submission__generated__valid_models_and_lossless_round_trip(
    sub: EncounterSubmission,
) -> None:
    out = map_submission(sub, CTX)
    for res in out:
        assert_model_equivalent(res)
    assert unmap_submission(out, CTX) == sub


def test_parse__empty_lists_and_empty_address__read_as_none_given() -> None:
    sub = load_example("esketamine-session").model_dump(mode="json", exclude_none=True)
    del sub["infusion"], sub["medication_review"]  # they name providers
    sub["providers"], sub["vitals"], sub["patient"]["address"] = [], [], {"line": []}
    parsed = EncounterSubmission.model_validate(sub)
    assert (parsed.providers, parsed.vitals, parsed.patient.address) == (None, None, None)
