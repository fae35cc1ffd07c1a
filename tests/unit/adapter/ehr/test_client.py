"""The EHR client's session, reads, searches and paging, and how request failures surface."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter

from adapter import __version__
from adapter.config import Settings
from adapter.ehr.client import FhirClient
from adapter.errors import (
    ConfigError,
    EhrAmbiguousMatch,
    EhrBadResponse,
    EhrError,
    EhrNotFound,
    EhrRateLimited,
    EhrRejected,
    EhrTimeout,
    EhrUnavailable,
)
from mappings.jsontypes import JsonObject, JsonValue
from tests.unit.adapter.ehr.support import BASE, FakeClock, at, capability, make_client

PATIENT: JsonObject = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"}}
SYSTEM = "https://fhir.example-clinic.org/sid/mrn"


def _searchset(*resources: JsonObject, next_url: str | None = None) -> JsonObject:
    links: list[JsonValue] = [{"relation": "next", "url": next_url}] if next_url else []
    entries: list[JsonValue] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def _patient(number: int) -> JsonObject:
    return {"resourceType": "Patient", "id": f"p{number}", "meta": {"versionId": "1"}}


# --- the session ---


def test_from_settings__session__pooled_verified_fhir_json_with_user_agent() -> None:
    client = FhirClient.from_settings(Settings(ehr_base_url=BASE))
    session = client._session
    adapter = session.get_adapter(BASE)
    assert isinstance(adapter, HTTPAdapter)
    assert adapter._pool_maxsize == 10
    assert session.verify is True
    assert session.headers["Accept"] == "application/fhir+json"
    assert session.headers["User-Agent"] == f"ketamine-fhir-adapter/{__version__}"


def test_from_settings__ca_bundle__used_to_verify_tls(tmp_path: Path) -> None:
    bundle = tmp_path / "ehr-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(ehr_base_url=BASE, ehr_ca_bundle=str(bundle))
    assert FhirClient.from_settings(settings)._session.verify == str(bundle)


def test_from_settings__no_ehr_configured__config_error() -> None:
    with pytest.raises(ConfigError, match="ADAPTER_EHR_BASE_URL"):
        FhirClient.from_settings(Settings(ehr_base_url=""))


def test_every_call__connect_and_read_timeout_from_settings(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("transaction"))
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    ehr.get(f"{BASE}/Patient", json=_searchset())
    client = make_client(clock)
    client.capabilities()
    client.read("Patient", "p1")
    list(client.search("Patient"))
    timeouts = [c.request.req_kwargs["timeout"] for c in ehr.calls]  # type: ignore[attr-defined]
    assert timeouts == [(4.0, 4.0)] * 3


# --- capabilities ---


def test_capabilities__asked_twice__fetched_once(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
    client = make_client(clock)
    first, second = client.capabilities(), client.capabilities()
    assert first is second
    assert first.supports_transaction
    assert first.supports_batch
    assert first.supports("Patient", "conditional-update")
    assert len(ehr.calls) == 1


def test_capabilities__metadata_down__error_and_asked_again_next_time(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", status=503)
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    client = make_client(clock)
    with pytest.raises(EhrUnavailable):
        client.capabilities()
    assert not client.capabilities().supports_transaction


# --- read ---


def test_read__found__resource_and_etag(ehr: responses.RequestsMock, clock: FakeClock) -> None:
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT, headers={"ETag": 'W/"3"'})
    fetched = make_client(clock).read("Patient", "p1")
    assert fetched.resource == PATIENT
    assert fetched.etag == 'W/"3"'


@pytest.mark.parametrize("status", [404, 410])
def test_read__missing_or_deleted__not_found(
    ehr: responses.RequestsMock, clock: FakeClock, status: int
) -> None:
    ehr.get(f"{BASE}/Patient/p1", status=status)
    with pytest.raises(EhrNotFound) as caught:
        make_client(clock).read("Patient", "p1")
    assert not caught.value.retryable


def test_read__other_resource_type_answered__bad_response(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", json={"resourceType": "OperationOutcome"})
    with pytest.raises(EhrBadResponse):
        make_client(clock).read("Patient", "p1")


@pytest.mark.parametrize(("rtype", "rid"), [("Patient", "../metadata"), ("patient?x=1", "p1")])
def test_read__id_or_type_not_fhir__refused_before_sending(
    clock: FakeClock, rtype: str, rid: str
) -> None:
    with pytest.raises(ValueError, match="FHIR"):
        make_client(clock).read(rtype, rid)


# --- search, history ---


def test_search__several_pages__follows_next_links(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    page2, page3 = f"{BASE}?_getpages=abc&_offset=2", f"{BASE}?_getpages=abc&_offset=4"
    ehr.get(f"{BASE}/Patient?_count=2", json=_searchset(_patient(1), _patient(2), next_url=page2))
    ehr.get(page2, json=_searchset(_patient(3), _patient(4), next_url=page3))
    ehr.get(page3, json=_searchset(_patient(5)))
    found = make_client(clock).search("Patient", {"_count": "2"})
    assert [r["id"] for r in found] == ["p1", "p2", "p3", "p4", "p5"]
    assert len(ehr.calls) == 3
    # Never a cached result: HAPI answers a repeated search from its cache for a minute.
    assert {call.request.headers["Cache-Control"] for call in ehr.calls} == {"no-cache"}


def test_search__outcome_entries__skipped(ehr: responses.RequestsMock, clock: FakeClock) -> None:
    page = _searchset(_patient(1))
    outcome: JsonObject = {"resourceType": "OperationOutcome"}
    entries = page["entry"]
    assert isinstance(entries, list)
    entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    ehr.get(f"{BASE}/Patient", json=page)
    assert [r["resourceType"] for r in make_client(clock).search("Patient")] == ["Patient"]


@pytest.mark.parametrize(
    "next_url",
    [
        "https://elsewhere.test/fhir?page=2",
        "https://ehr.test/fhir-evil/Patient",
        "http://ehr.test/fhir?p=2",
    ],
)
def test_search__next_link_leaves_base_url__refused(
    ehr: responses.RequestsMock, clock: FakeClock, next_url: str
) -> None:
    ehr.get(f"{BASE}/Patient", json=_searchset(_patient(1), next_url=next_url))
    with pytest.raises(EhrBadResponse, match="leaves its base URL"):
        list(make_client(clock).search("Patient"))
    assert len(ehr.calls) == 1


def test_search__next_link_loops__refused(ehr: responses.RequestsMock, clock: FakeClock) -> None:
    page2 = f"{BASE}?_getpages=abc"
    ehr.get(f"{BASE}/Patient", json=_searchset(_patient(1), next_url=page2))
    ehr.get(page2, json=_searchset(_patient(2), next_url=page2))
    with pytest.raises(EhrBadResponse, match="link back"):
        list(make_client(clock).search("Patient"))


def test_search__answer_not_a_searchset__bad_response(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient", json={"resourceType": "Bundle", "type": "history"})
    with pytest.raises(EhrBadResponse):
        list(make_client(clock).search("Patient"))


def test_history__type_level_since__entries_with_deletions(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    entries = [
        {"resource": _patient(1), "request": {"method": "PUT", "url": "Patient/p1"}},
        {"request": {"method": "DELETE", "url": "Patient/p2"}, "response": {"status": "204"}},
    ]
    ehr.get(
        f"{BASE}/Patient/_history?_since=2026-01-01T00:00:00Z",
        json={"resourceType": "Bundle", "type": "history", "entry": entries},
    )
    found = list(make_client(clock).history("Patient", params={"_since": "2026-01-01T00:00:00Z"}))
    assert [at(e, "request", "method") for e in found] == ["PUT", "DELETE"]


def test_history__instance_level__instance_url(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1/_history", json={"resourceType": "Bundle", "type": "history"})
    assert list(make_client(clock).history("Patient", "p1")) == []


# --- conditional read by identifier ---


def test_conditional_read__one_match__resource_and_etag_from_version(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient", json=_searchset(PATIENT))
    fetched = make_client(clock).conditional_read_by_identifier("Patient", SYSTEM, "MRN-1")
    assert fetched is not None
    assert (fetched.resource, fetched.etag) == (PATIENT, 'W/"3"')
    assert ehr.calls[0].request.params == {"identifier": f"{SYSTEM}|MRN-1", "_count": "2"}  # type: ignore[attr-defined]


def test_conditional_read__no_match__none(ehr: responses.RequestsMock, clock: FakeClock) -> None:
    ehr.get(f"{BASE}/Patient", json=_searchset())
    assert make_client(clock).conditional_read_by_identifier("Patient", SYSTEM, "MRN-1") is None


def test_conditional_read__two_matches__ambiguous_match(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient", json=_searchset(_patient(1), _patient(2)))
    with pytest.raises(EhrAmbiguousMatch):
        make_client(clock).conditional_read_by_identifier("Patient", SYSTEM, "MRN-1")


def test_conditional_read__total_says_several__ambiguous_match(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    page = _searchset(_patient(1)) | {"total": 3}
    ehr.get(f"{BASE}/Patient", json=page)
    with pytest.raises(EhrAmbiguousMatch):
        make_client(clock).conditional_read_by_identifier("Patient", SYSTEM, "MRN-1")


# --- failures of a plain request ---


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"status": 500}, EhrUnavailable),
        ({"status": 502, "body": "<html>Bad Gateway</html>"}, EhrUnavailable),
        ({"status": 503}, EhrUnavailable),
        ({"status": 408}, EhrTimeout),
        ({"status": 400}, EhrRejected),
        ({"body": requests.ConnectionError("Connection reset by peer")}, EhrUnavailable),
        ({"body": requests.ReadTimeout("slow")}, EhrTimeout),
        ({"body": requests.ConnectTimeout("slow")}, EhrTimeout),
        ({"body": "<html>maintenance</html>"}, EhrBadResponse),
        ({"body": '{"resourceType": "Patient",'}, EhrBadResponse),
    ],
)
def test_read__failure__most_specific_ehr_error(
    ehr: responses.RequestsMock, clock: FakeClock, reply: dict[str, object], error: type[EhrError]
) -> None:
    ehr.add(responses.GET, f"{BASE}/Patient/p1", **reply)  # type: ignore[arg-type]
    with pytest.raises(error):
        make_client(clock).read("Patient", "p1")


def test_read__429_retry_after__rate_limited_with_seconds(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "7"})
    with pytest.raises(EhrRateLimited) as caught:
        make_client(clock).read("Patient", "p1")
    assert caught.value.retry_after == 7
    assert caught.value.retryable
