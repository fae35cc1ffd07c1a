"""The EHR's pace: `Retry-After` read (seconds or HTTP date, capped) on 429 and 503, and no
request leaving a client, or a token endpoint, before the time the EHR named."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
import responses

from adapter.config import Settings
from adapter.ehr.client import FhirClient
from adapter.ehr.pace import Pace, retry_after_of, retry_after_seconds
from adapter.errors import EhrRateLimited, EhrUnavailable
from tests.unit.adapter.ehr.support import BASE, TOKEN_URL, FakeClock, capability

PATIENT = {"resourceType": "Patient", "id": "p1"}


def _reply(status: int, retry_after: str | None) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    if retry_after is not None:
        reply.headers["Retry-After"] = retry_after
    return reply


def _http_date(seconds_from: float) -> str:
    return format_datetime(datetime.fromtimestamp(seconds_from, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0", 0.0), ("86400", 300.0), ("soon", None), ("1.5", None), (None, None)],
)
def test_retry_after_seconds__delay_form__read_and_capped(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header, 1_700_000_000.0) == seconds


def test_retry_after_seconds__http_date__seconds_from_now_capped() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds(_http_date(now + 42), now) == 42
    assert retry_after_seconds(_http_date(now + 7200), now, max_seconds=600) == 600
    assert retry_after_seconds(_http_date(now - 10), now) == 0


@pytest.mark.parametrize(("status", "seconds"), [(429, 5.0), (503, 5.0), (500, None), (200, None)])
def test_retry_after_of__only_429_and_503_ask_for_a_pause(
    status: int, seconds: float | None
) -> None:
    assert retry_after_of(_reply(status, "5"), 0.0) == seconds


def test_pace__after_retry_after__held_until_then_released(clock: FakeClock) -> None:
    pace = Pace(clock)
    assert pace.retry_after(_reply(503, "5")) == 5
    with pytest.raises(EhrRateLimited) as caught:
        pace.check("a POST request")
    assert caught.value.retry_after == 5
    clock.now += 4.5
    with pytest.raises(EhrRateLimited):
        pace.check("a POST request")
    clock.now += 0.5
    pace.check("a POST request")
    assert pace.remaining() == 0


def test_pace__shorter_wait_after_a_longer_one__longer_one_kept(clock: FakeClock) -> None:
    pace = Pace(clock)
    pace.retry_after(_reply(429, "30"))
    pace.retry_after(_reply(429, "2"))
    assert pace.remaining() == 30


def test_client__503_with_retry_after__error_carries_it_and_next_request_is_not_sent(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    read = ehr.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "5"})
    client = FhirClient(BASE, clock=clock, sleep=clock.sleep)
    with pytest.raises(EhrUnavailable) as caught:
        client.read("Patient", "p1")
    assert caught.value.retry_after == 5
    with pytest.raises(EhrRateLimited) as held:
        client.read("Patient", "p1")
    assert held.value.retry_after == 5
    assert held.value.retryable
    assert read.call_count == 1
    ehr.replace(responses.GET, f"{BASE}/Patient/p1", json=PATIENT)
    clock.now += 5
    assert client.read("Patient", "p1").resource == PATIENT


def test_client__retry_after_past_configured_maximum__capped(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "3600"})
    client = FhirClient(BASE, clock=clock, retry_after_max_seconds=60)
    with pytest.raises(EhrRateLimited) as caught:
        client.read("Patient", "p1")
    assert caught.value.retry_after == 60


def test_client__429_on_metadata__retryable_with_retry_after_not_a_bad_response(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", status=429, headers={"Retry-After": "8"})
    client = FhirClient(BASE, clock=clock)
    with pytest.raises(EhrRateLimited) as caught:
        client.capabilities()
    assert caught.value.retry_after == 8
    ehr.replace(responses.GET, f"{BASE}/metadata", json=capability("transaction"))
    clock.now += 8
    assert client.capabilities().supports_transaction


def test_token_endpoint__429_with_retry_after__no_token_request_before_then(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    token = ehr.post(TOKEN_URL, status=429, headers={"Retry-After": "20"})
    settings = Settings(
        ehr_base_url=BASE,
        ehr_auth="client_credentials",
        ehr_auth_client_id="adapter",
        ehr_auth_client_secret="s3cret",
        ehr_auth_token_url=TOKEN_URL,
    )
    client = FhirClient.from_settings(settings, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        with pytest.raises(EhrRateLimited) as caught:
            client.read("Patient", "p1")
    assert token.call_count == 1
    assert caught.value.retry_after == 20
    assert client.pace.remaining() == 20  # nothing at all leaves for the EHR meanwhile
    ehr.replace(responses.POST, TOKEN_URL, json={"access_token": "t", "token_type": "Bearer"})
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    clock.now += 20
    assert client.read("Patient", "p1").resource == PATIENT
