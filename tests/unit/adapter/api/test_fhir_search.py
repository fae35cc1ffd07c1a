"""`/fhir` search, type history and `$everything` through the app, on a temp SQLite store."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from adapter.api.app import create_app
from adapter.store.accept import Submission, accept
from adapter.store.engine import write_transaction
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from mappings.contract import parse_submission
from mappings.encounter.submission import map_submission
from tests.unit.adapter.api.conftest import (
    bearer,
    example,
    post_encounter,
    running,
    settings_for,
    write_keys,
)

A = "search-reader-writer-of-a-0123456789abcdef"
B = "search-reader-writer-of-b-0123456789abcdef"
A_OBSERVATIONS = "search-observations-only-a-0123456789abcdef"
SCOPES = ["clinic/encounters.write", "system/*.rs"]
KEYS = [
    {"key": A, "tenant": "clinic-a", "scopes": SCOPES},
    {"key": B, "tenant": "clinic-b", "scopes": SCOPES},
    {"key": A_OBSERVATIONS, "tenant": "clinic-a", "scopes": ["system/Observation.rs"]},
]
TYPICAL, STOPPED, ESKETAMINE = "typical-ketamine-infusion", "stopped-infusion", "esketamine-session"
LOINC = "http://loinc.org"
HEART_RATE = "8867-4"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    (tmp_path / "keys").mkdir()
    keys = write_keys(tmp_path / "keys", KEYS)
    return create_app(settings_for(tmp_path, api_keys_file=str(keys)))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


@pytest.fixture
def stored(client: TestClient) -> dict[str, set[str]]:
    """Tenant A holds the typical and the stopped infusion, tenant B the esketamine one:
    each tenant's references."""
    own: dict[str, set[str]] = {A: set(), B: set()}
    for name, key in ((TYPICAL, A), (STOPPED, A), (ESKETAMINE, B)):
        reply = post_encounter(client, example(name), key)
        assert reply.status_code == 201
        own[key] |= set(reply.json()["created"])
    return own


def _get(client: TestClient, path: str, key: str = A, **headers: str) -> Any:
    reply = client.get(path, headers=bearer(key) | headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/fhir+json"
    body = reply.json()
    Bundle.model_validate(body)
    return body


def _status(client: TestClient, path: str, key: str = A, **headers: str) -> int:
    return client.get(path, headers=bearer(key) | headers).status_code


def _matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    entries = bundle.get("entry", [])
    return [e["resource"]["id"] for e in entries if e.get("search", {}).get("mode") == mode]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((ln["url"] for ln in bundle["link"] if ln["relation"] == relation), None)


def _all_pages(client: TestClient, path: str, key: str = A) -> list[str]:
    ids: list[str] = []
    url: str | None = path
    while url:
        bundle = _get(client, url, key)
        ids += _ids(bundle)
        url = _link(bundle, "next")
    return ids


def _patient_id(client: TestClient, key: str = A, mrn: str = "MRN-004211") -> str:
    bundle = _get(client, f"/fhir/Patient?identifier={mrn}", key)
    (patient,) = _matches(bundle)
    return str(patient["id"])


# --- criteria ---------------------------------------------------------------------------


def test_search__no_criteria__every_current_resource_of_the_type_with_total(
    client: TestClient, stored: object
) -> None:
    bundle = _get(client, "/fhir/Patient")
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 2
    assert len(_matches(bundle)) == 2
    assert _link(bundle, "self") is not None
    assert _link(bundle, "next") is None


def test_search__id_and_identifier__find_exactly_that_one(
    client: TestClient, stored: object
) -> None:
    patient_id = _patient_id(client)
    assert _ids(_get(client, f"/fhir/Patient?_id={patient_id}")) == [patient_id]
    system = "https://fhir.example-clinic.org/clinic-a/sid/mrn"
    assert _ids(_get(client, f"/fhir/Patient?identifier={system}|MRN-004211")) == [patient_id]
    assert _get(client, "/fhir/Patient?identifier=http://other.example|MRN-004211")["total"] == 0
    of_system = _matches(_get(client, f"/fhir/Patient?identifier={system}|"))
    assert patient_id in [patient["id"] for patient in of_system]
    assert all(system in {i["system"] for i in p["identifier"]} for p in of_system)
    assert _get(client, "/fhir/Patient?identifier=http://other.example|")["total"] == 0


def test_search__patient_code_system_and_bare__same_heart_rates(
    client: TestClient, stored: object
) -> None:
    patient_id = _patient_id(client)
    by_system = _get(client, f"/fhir/Observation?patient={patient_id}&code={LOINC}|{HEART_RATE}")
    bare = _get(client, f"/fhir/Observation?subject=Patient/{patient_id}&code={HEART_RATE}")
    assert by_system["total"] > 0
    assert _ids(by_system) == _ids(bare)
    for observation in _matches(by_system):
        assert observation["subject"]["reference"] == f"Patient/{patient_id}"
        assert {c["code"] for c in observation["code"]["coding"]} == {HEART_RATE}


def test_search__code_alternatives_or__repeats_and(client: TestClient, stored: object) -> None:
    heart = _get(client, f"/fhir/Observation?code={HEART_RATE}")["total"]
    phq9 = _get(client, "/fhir/Observation?code=44261-6")["total"]
    either = _get(client, f"/fhir/Observation?code={HEART_RATE},44261-6")["total"]
    both = _get(client, f"/fhir/Observation?code={HEART_RATE}&code=44261-6")["total"]
    assert (heart, phq9) > (0, 0)
    assert either == heart + phq9
    assert both == 0


def test_search__encounter_category_status(client: TestClient, stored: object) -> None:
    (encounter,) = _matches(_get(client, "/fhir/Encounter?identifier=ENC-2026-1120-001"))
    vitals = _get(
        client,
        f"/fhir/Observation?encounter={encounter['id']}&category=vital-signs&status=final",
    )
    assert vitals["total"] > 0
    for observation in _matches(vitals):
        assert observation["encounter"]["reference"] == f"Encounter/{encounter['id']}"
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    assert _get(client, f"/fhir/Observation?category={system}|vital-signs")["total"] > 0
    assert _get(client, "/fhir/Observation?status=cancelled")["total"] == 0


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("date=2026-11-20", True),
        ("date=eq2026-11", True),
        ("date=ge2026-11-20&date=lt2026-11-21", True),
        ("date=gt2026-11-21", False),
        ("date=lt2026-11-20", False),
        ("date=le2026-11-19", False),
        ("date=2026-11-20T08:40:00-05:00", True),
        ("date=2026-11-20T13:40:00Z", True),
        ("date=2026-11-20T13:41:00Z", False),
    ],
)
def test_search__date_prefixes__on_the_effective_time(
    client: TestClient, query: str, found: bool
) -> None:
    assert post_encounter(client, example(TYPICAL), A).status_code == 201
    bundle = _get(client, f"/fhir/Observation?code=44261-6&{query.replace('+', '%2B')}")
    assert bundle["total"] == (1 if found else 0)


def test_search__date_of_encounter_is_its_period(client: TestClient, stored: object) -> None:
    assert _get(client, "/fhir/Encounter?date=2026-11-20")["total"] == 1
    assert _get(client, "/fhir/Encounter?date=ge2026-11-21")["total"] == 1  # the stopped one


def test_search__last_updated__prefixes_and_sort(client: TestClient, stored: object) -> None:
    everything = _get(client, "/fhir/Observation?_count=1000")["total"]
    assert _get(client, "/fhir/Observation?_lastUpdated=gt2000-01-01")["total"] == everything
    assert _get(client, "/fhir/Observation?_lastUpdated=lt2000-01-01")["total"] == 0
    newest_first = _get(client, "/fhir/Observation?_sort=-_lastUpdated&_count=1000")
    stamps = [r["meta"]["lastUpdated"] for r in _matches(newest_first)]
    assert stamps == sorted(stamps, reverse=True)


def test_search__sort_by_date__ascending_and_descending(client: TestClient, stored: object) -> None:
    up = _matches(_get(client, "/fhir/Observation?_sort=date&_count=1000"))
    down = _matches(_get(client, "/fhir/Observation?_sort=-date&_count=1000"))
    assert [r["id"] for r in up] == [r["id"] for r in down][::-1]
    times = [r.get("effectiveDateTime", "") for r in up if "effectiveDateTime" in r]
    assert times[0] <= times[-1]


# --- result parameters ------------------------------------------------------------------


def test_summary_count__total_without_entries(client: TestClient, stored: object) -> None:
    bundle = _get(client, "/fhir/Observation?_summary=count")
    assert bundle["total"] > 0
    assert "entry" not in bundle


def test_count__clamped_to_1000(client: TestClient, stored: object) -> None:
    bundle = _get(client, "/fhir/Observation?_count=5000")
    assert len(_matches(bundle)) == bundle["total"] <= 1000


def test_include__patient_and_encounter__entries_marked_include(
    client: TestClient, stored: object
) -> None:
    bundle = _get(
        client,
        f"/fhir/Observation?code={HEART_RATE}&_include=Observation:patient"
        "&_include=Observation:encounter&_count=2",
    )
    included = {
        e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"
    }
    assert included == {"Patient", "Encounter"}
    assert len(_ids(bundle)) == 2


def test_revinclude__provenance_target_and_observation_subject(
    client: TestClient, stored: object
) -> None:
    patient_id = _patient_id(client)
    bundle = _get(
        client,
        f"/fhir/Patient?_id={patient_id}&_revinclude=Observation:subject",
    )
    modes = {e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"match", "include"}
    assert all(
        e["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    )
    observed = _get(client, f"/fhir/Observation?code={HEART_RATE}&_revinclude=Provenance:target")
    cited = {
        t["reference"]
        for e in observed["entry"]
        if e["search"]["mode"] == "include"
        for t in e["resource"]["target"]
    }
    assert {f"Observation/{i}" for i in _ids(observed)} <= cited
    encounter = _matches(_get(client, "/fhir/Encounter?identifier=ENC-2026-1120-001"))[0]
    with_medications = _get(
        client,
        f"/fhir/Encounter?_id={encounter['id']}&_revinclude=MedicationAdministration:context",
    )
    assert "MedicationAdministration" in {
        e["resource"]["resourceType"] for e in with_medications["entry"]
    }


def test_include__types_the_key_may_not_read__left_out(client: TestClient, stored: object) -> None:
    bundle = _get(client, "/fhir/Observation?_include=Observation:patient&_count=3", A_OBSERVATIONS)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Observation"}


@pytest.mark.parametrize(
    "query",
    [
        "_include=Observation:code",
        "_include=Nope:patient",
        "_sort=status",
        "_count=-1",
        "_summary=all",
        "date=qq2026-01-01",
        "date=yesterday",
        "patient=not_an$id",
        "_id=" + "x" * 65,
        "code=",
    ],
)
def test_bad_values_of_known_parameters__400_naming_the_parameter(
    client: TestClient, query: str
) -> None:
    reply = client.get(f"/fhir/Observation?{query}", headers=bearer(A))
    assert reply.status_code == 400
    assert reply.json()["resourceType"] == "OperationOutcome"
    name = query.split("=")[0]
    assert name in reply.json()["issue"][0]["diagnostics"]


def test_unknown_parameter__ignored_and_reported_in_an_outcome_entry(
    client: TestClient, stored: object
) -> None:
    plain = _get(client, "/fhir/Observation?_count=1000")
    lenient = {"Prefer": "handling=lenient"}
    bundle = _get(client, "/fhir/Observation?_count=1000&flavour=sweet&code:text=pain", **lenient)
    assert bundle["total"] == plain["total"]
    (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["fullUrl"].startswith("urn:uuid:")
    issues = outcome["resource"]["issue"]
    assert [i["severity"] for i in issues] == ["warning", "warning"]
    assert "'flavour'" in issues[0]["diagnostics"]
    assert "sweet" not in bundle["entry"][-1]["resource"]["issue"][0]["diagnostics"]


def test_unknown_parameter__strict_by_default__400_naming_it(client: TestClient) -> None:
    for headers in ({}, {"Prefer": "handling=strict"}):
        reply = client.get("/fhir/Observation?flavour=sweet", headers=bearer(A) | headers)
        assert reply.status_code == 400
        assert "'flavour'" in reply.json()["issue"][0]["diagnostics"]
    lenient = {"Prefer": "handling=lenient"}
    assert _status(client, "/fhir/Observation?flavour=sweet", **lenient) == 200


def test_search__unknown_type__404_and_write__405(client: TestClient) -> None:
    assert _status(client, "/fhir/Nope") == 404
    assert client.post("/fhir/Observation", headers=bearer(A)).status_code == 405


# --- paging -----------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["", "&_sort=_lastUpdated", "&_sort=-date", "&_sort=date"])
def test_paging__next_to_the_end__every_match_once(
    client: TestClient, stored: object, sort: str
) -> None:
    total = _get(client, "/fhir/Observation")["total"]
    ids = _all_pages(client, f"/fhir/Observation?_count=7{sort}")
    assert len(ids) == total == len(set(ids))


def test_paging__previous_gives_the_page_before(client: TestClient, stored: object) -> None:
    first = _get(client, "/fhir/Observation?_count=5")
    second = _get(client, str(_link(first, "next")))
    assert _link(first, "previous") is None
    back = _get(client, str(_link(second, "previous")))
    assert _ids(back) == _ids(first)


def test_paging__writes_between_pages__no_duplicates_no_gaps_no_newcomers(
    client: TestClient, stored: object
) -> None:
    before = _all_pages(client, "/fhir/Observation?_count=1000")
    first = _get(client, "/fhir/Observation?_count=10")
    changed = example(TYPICAL)
    changed["vitals"][0]["heart_rate"]["value"] += 3  # an update of one seen resource
    assert post_encounter(client, changed, A).status_code in (200, 201)
    assert post_encounter(client, example(ESKETAMINE), A).status_code == 201  # new ones
    ids = _ids(first)
    url = _link(first, "next")
    while url:
        page = _get(client, url)
        assert page["total"] == first["total"]
        ids += _ids(page)
        url = _link(page, "next")
    assert sorted(ids) == sorted(before)


def test_paging__tampered_or_foreign_token__400(client: TestClient, stored: object) -> None:
    next_url = str(_link(_get(client, "/fhir/Observation?_count=5"), "next"))
    token = dict(parse_qsl(urlsplit(next_url).query))["_cursor"]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "garbage", token[:-1], ""):
        assert _status(client, f"/fhir/Observation?_count=5&_cursor={bad}") == 400
    # A good token for another query (or another type) is refused too.
    assert _status(client, f"/fhir/Observation?_count=6&_cursor={token}") == 400
    assert _status(client, f"/fhir/Condition?_count=5&_cursor={token}") == 400


def test_paging__token_of_tenant_a__pages_tenant_b_data_only(
    client: TestClient, stored: object
) -> None:
    next_url = str(_link(_get(client, "/fhir/Observation?_count=2"), "next"))
    as_b = _get(client, next_url, B)
    own_b = _all_pages(client, "/fhir/Observation?_count=1000", B)
    assert set(_ids(as_b)) <= set(own_b)


# --- tenancy ----------------------------------------------------------------------------


def _criteria(client: TestClient) -> list[tuple[str, bool]]:
    """A query per search parameter matching tenant A's data, and whether it names
    something only tenant A has (then tenant B must find nothing at all)."""
    patient_id = _patient_id(client)
    (encounter,) = _matches(_get(client, "/fhir/Encounter?identifier=ENC-2026-1120-001"))
    observation = _matches(_get(client, f"/fhir/Observation?code={HEART_RATE}&_count=1"))[0]
    provenance = _matches(_get(client, "/fhir/Provenance?_count=1"))[0]
    target = provenance["target"][0]["reference"]
    return [
        (f"Observation?_id={observation['id']}", True),
        ("Patient?identifier=MRN-004211", True),
        (f"Observation?patient={patient_id}", True),
        (f"Observation?subject=Patient/{patient_id}", True),
        (f"Observation?encounter=Encounter/{encounter['id']}", True),
        (f"Observation?code={LOINC}|{HEART_RATE}&_include=Observation:patient", False),
        ("Observation?category=vital-signs&_include=Observation:encounter", False),
        ("Observation?date=2026-11-20", True),
        ("Encounter?status=finished&_revinclude=Observation:encounter", False),
        ("Observation?_lastUpdated=gt2000-01-01", False),
        (f"Provenance?target={target}", True),
        (f"MedicationAdministration?patient={patient_id}", True),
        (f"Patient?_id={patient_id}&_revinclude=Observation:subject", True),
        (f"Observation?_id={observation['id']}&_include=Observation:patient", True),
        ("Patient?_revinclude=Provenance:target&_revinclude=Encounter:subject", False),
    ]


def test_tenancy__every_parameter_and_include__each_tenant_sees_only_its_own(
    client: TestClient, stored: dict[str, set[str]]
) -> None:
    for query, only_a in _criteria(client):
        for key in (A, B):
            bundle = _get(client, f"/fhir/{query}&_count=1000", key)
            refs = {
                f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in bundle.get("entry", [])
            }
            assert refs <= stored[key], (query, key)
            if key == A or not only_a:
                assert bundle["total"] > 0, (query, key)
            else:
                assert bundle["total"] == 0, query


def test_tenancy__same_ids_in_both_tenants__includes_stay_in_the_tenant(
    app: FastAPI, client: TestClient, stored: object
) -> None:
    changed = copy.deepcopy(example(TYPICAL))
    changed["patient"]["given_name"] = "Tenant-B-Only"
    # Two tenants holding the same ids: what a store kept from before ids had owners, when
    # two clinics shared a namespace (the rules now refuse it, so it is stored directly).
    ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/clinic-a", tenant="clinic-b")
    sub = parse_submission(json.dumps(changed))
    document = Submission("clinic-b", "encounter", sub.encounter_id, sub.patient.mrn, "x", b"")
    with write_transaction(app.state.engine) as conn:
        accept(conn, document, map_submission(sub, ctx), ctx, datetime.now(UTC))
    patient_id = _patient_id(client)
    query = f"/fhir/Observation?patient={patient_id}&_include=Observation:patient&_count=1"
    for key, is_b in ((A, False), (B, True)):
        entries = _get(client, query, key)["entry"]
        included = [e["resource"] for e in entries if e["search"]["mode"] == "include"]
        assert len(included) == 1
        assert (included[0]["name"][0]["given"][0] == "Tenant-B-Only") is is_b
    everything_b = _get(client, f"/fhir/Patient/{patient_id}/$everything?_count=1000", B)
    given = [
        e["resource"]["name"][0]["given"][0]
        for e in everything_b["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]
    assert given == ["Tenant-B-Only"]


def test_tenancy__everything_of_another_tenants_patient__404(
    client: TestClient, stored: object
) -> None:
    patient_id = _patient_id(client)
    assert _status(client, f"/fhir/Patient/{patient_id}/$everything", B) == 404
    assert _get(client, "/fhir/Observation/_history", B)["total"] > 0
    own = {e["resource"]["id"] for e in _get(client, "/fhir/Patient/_history", B)["entry"]}
    assert patient_id not in own


# --- type history -----------------------------------------------------------------------


def test_type_history__every_version_newest_first__paged_and_since(
    client: TestClient, stored: object
) -> None:
    changed = example(TYPICAL)
    changed["vitals"][0]["heart_rate"]["value"] += 3
    assert post_encounter(client, changed, A).status_code in (200, 201)
    first = _get(client, "/fhir/Observation/_history?_count=4")
    assert first["type"] == "history"
    total = first["total"]
    assert total == _get(client, "/fhir/Observation")["total"] + 1
    entries, url = list(first["entry"]), _link(first, "next")
    while url:
        page = _get(client, url)
        entries += page["entry"]
        url = _link(page, "next")
    assert len(entries) == total
    stamps = [e["response"]["lastModified"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert entries[0]["response"]["etag"] == 'W/"2"'
    since = entries[0]["response"]["lastModified"]
    assert _get(client, f"/fhir/Observation/_history?_since={since}")["total"] == 1
    assert _status(client, "/fhir/Observation/_history?_since=never") == 400


# --- $everything ------------------------------------------------------------------------


def test_everything__patient__its_resources_and_what_they_cite_only(
    client: TestClient, stored: object
) -> None:
    patient_id = _patient_id(client)
    bundle = _get(client, f"/fhir/Patient/{patient_id}/$everything?_count=1000")
    resources = [e["resource"] for e in bundle["entry"]]
    assert bundle["total"] == len(resources)
    kinds = {r["resourceType"] for r in resources}
    assert {"Patient", "Encounter", "Observation", "Provenance", "Practitioner"} <= kinds
    patients = [r["id"] for r in resources if r["resourceType"] == "Patient"]
    assert patients == [patient_id]  # not the other patient of this tenant
    encounters = {
        r["identifier"][0]["value"] for r in resources if r["resourceType"] == "Encounter"
    }
    assert encounters == {"ENC-2026-1120-001"}
    paged = _all_pages(client, f"/fhir/Patient/{patient_id}/$everything?_count=9")
    assert sorted(paged) == sorted(r["id"] for r in resources)


def test_everything__since__only_what_changed(client: TestClient, stored: object) -> None:
    patient_id = _patient_id(client)
    changed = example(TYPICAL)
    changed["vitals"][0]["heart_rate"]["value"] += 3
    assert post_encounter(client, changed, A).status_code in (200, 201)
    history = _get(client, "/fhir/Observation/_history?_count=1")
    since = history["entry"][0]["response"]["lastModified"]
    bundle = _get(client, f"/fhir/Patient/{patient_id}/$everything?_since={since}")
    assert bundle["total"] >= 1
    assert all(e["resource"]["meta"]["lastUpdated"] >= since for e in bundle["entry"])


def test_everything__encounter__its_records_patient_and_providers(
    client: TestClient, stored: object
) -> None:
    (encounter,) = _matches(_get(client, "/fhir/Encounter?identifier=ENC-2026-1122-003"))
    bundle = _get(client, f"/fhir/Encounter/{encounter['id']}/$everything?_count=1000")
    resources = [e["resource"] for e in bundle["entry"]]
    kinds = {r["resourceType"] for r in resources}
    assert {"Encounter", "Patient", "MedicationAdministration", "Observation"} <= kinds
    for resource in resources:
        encounter_ref = resource.get("encounter", resource.get("context", {})).get("reference")
        assert encounter_ref in (None, f"Encounter/{encounter['id']}")


def test_everything__other_types_unknown_ids__404_bad_id__400(client: TestClient) -> None:
    assert _status(client, "/fhir/Observation/x/$everything") == 404
    assert _status(client, "/fhir/Patient/nobody/$everything") == 404
    assert _status(client, "/fhir/Patient/bad_id/$everything") == 400


def test_paging_secret__shared_by_processes__their_links_work_across_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "keys").mkdir()
    keys = str(write_keys(tmp_path / "keys", KEYS))

    def app_with(secret: str) -> FastAPI:
        return create_app(settings_for(tmp_path, api_keys_file=keys, paging_secret=secret))

    for first in running(app_with("one shared secret")):
        assert post_encounter(first, example(TYPICAL), A).status_code == 201
        next_url = str(_link(_get(first, "/fhir/Observation?_count=3"), "next"))
    for twin in running(app_with("one shared secret")):
        assert _status(twin, next_url) == 200
    for stranger in running(app_with("another secret")):
        assert _status(stranger, next_url) == 400
