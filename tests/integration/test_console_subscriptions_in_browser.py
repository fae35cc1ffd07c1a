"""The console's *Subscriptions* page in a real browser (Debian's Chromium through Selenium),
against a live `adapter serve` delivering FHIR Subscriptions on its own PostgreSQL database
(issue 22: the operator is told of a subscription in error, and starts it again).

A receiver started here refuses (HTTP 500) until the subscription goes to `error`; the
operator sees it in the overview's count and on the page (its receiver by origin only, its
last error by class), presses *Restart delivery*; the receiver, answering now, gets the
handshake and the event that waited, and the page shows the subscription `active`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.browser import chromium, reload_until, screenshot, until
from tests.integration.support import own_database
from tests.integration.test_clinic_api import serving
from tests.receiver import Receiver, receiver
from tests.subscription_clients import subscription
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

pytestmark = pytest.mark.integration

ADMIN = f"console-admin-{uuid.uuid4().hex}"
SUBSCRIBER = f"console-subscriber-{uuid.uuid4().hex}"
RECEIVER_SECRET = f"receiver-secret-{uuid.uuid4().hex[:8]}"
MAX_FAILURES = 2


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    with own_database(postgres_url, "console_subs") as url:
        yield url


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    # The path and query carry a credential, as some receivers' do: never shown.
    with receiver(f"/hooks/clinic?token={RECEIVER_SECRET}") as found:
        yield found


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("console-subscriptions")
    tenant = f"console-subs-{uuid.uuid4().hex[:8]}"
    keys = [
        {"key": ADMIN, "tenant": tenant, "scopes": ["admin/*.*"]},
        {
            "key": SUBSCRIBER,
            "tenant": tenant,
            "scopes": ["clinic/encounters.write", "system/Subscription.*"],
        },
    ]
    (folder / "keys.json").write_text(json.dumps(keys))
    settings = {
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": "",  # no EHR: the service's worker only delivers
        "ADAPTER_API_KEYS_FILE": str(folder / "keys.json"),
        "ADAPTER_RUN_WORKER": "true",
        "ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1",
        "ADAPTER_SUBSCRIPTION_MAX_FAILURES": str(MAX_FAILURES),
        "ADAPTER_SUBSCRIPTION_RETRY_MAX_SECONDS": "1",
        "ADAPTER_SUBSCRIPTION_TIMEOUT_SECONDS": "5",
        "ADAPTER_LOG_LEVEL": "WARNING",
    }
    with serving(settings, folder / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _subscribe(service: str, endpoint: str) -> str:
    """A subscription to the encounter topic, made through the FHIR API: its id."""
    body = subscription(endpoint)
    reply = requests.post(
        f"{service}/fhir/Subscription", json=body, headers=_bearer(SUBSCRIBER), timeout=60
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _status_of(service: str, public_id: str) -> str:
    reply = requests.get(
        f"{service}/fhir/Subscription/{public_id}", headers=_bearer(SUBSCRIBER), timeout=60
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["status"])


def _post_encounter(service: str) -> None:
    document = json.loads((EXAMPLES_DIR / "esketamine-session.json").read_text())
    document["encounter_id"] = f"ENC-SUBS-{uuid.uuid4().hex[:8]}"
    reply = requests.post(
        f"{service}/clinic/encounters", json=document, headers=_bearer(SUBSCRIBER), timeout=60
    )
    assert reply.status_code == 201, reply.text


def test_subscription_in_error__seen_and_restarted_from_the_console(
    service: str, hook: Receiver, browser: WebDriver
) -> None:
    hook.answers = [500] * MAX_FAILURES  # the handshake refused until the limit; then 200
    made = _subscribe(service, hook.url)
    until("the subscription in error", lambda: _status_of(service, made) == "error", 120)
    assert hook.answers == []
    _post_encounter(service)  # an event for it, waiting while it is in error

    browser.get(f"{service}/console/sign-in")
    field = browser.find_element(By.ID, "credential")
    field.send_keys(ADMIN)
    field.send_keys(Keys.ENTER)
    count = until("the overview", lambda: browser.find_elements(By.ID, "subscriptions-in-error"))
    assert isinstance(count, list)
    assert count[0].text == "1"
    screenshot(browser, "subscriptions-1-overview")
    count[0].click()
    row = until(
        "the subscriptions page", lambda: browser.find_elements(By.ID, f"subscription-{made}")
    )
    assert isinstance(row, list)
    text = row[0].text
    assert "error" in text
    assert "encounter" in text
    assert "ReceiverRefused" in text
    assert f"http://127.0.0.1:{urlsplit(hook.url).port}" in text
    page = browser.page_source
    assert "receiver-secret" not in page  # neither the query's token nor the header's
    assert "/hooks/clinic" not in page
    _readable_at_double_zoom(browser, f"{service}/console/subscriptions")
    screenshot(browser, "subscriptions-2-in-error")

    browser.find_element(By.ID, f"restart-{made}").click()
    confirmed = until("the confirmation", lambda: browser.find_elements(By.ID, "restarted"))
    assert isinstance(confirmed, list)
    assert f"Subscription {made} restarted" in confirmed[0].text
    reload_until(
        browser,
        f"{service}/console/subscriptions",
        "the subscription active again",
        f'#subscription-{made} td[data-status="active"]',
    )
    screenshot(browser, "subscriptions-3-restarted")
    hook.wait_for(lambda: hook.event_numbers() == [1], 120, "the event that waited")
    assert len(hook.of_kind("handshake")) == 1
    browser.get(f"{service}/console")
    assert browser.find_element(By.ID, "subscriptions-in-error").text == "0"
    browser.get(f"{service}/console/audit")
    assert "console-subscription-restart" in browser.find_element(By.ID, "audit").text


def _readable_at_double_zoom(browser: WebDriver, url: str) -> None:
    """At 200 % zoom the page needs no sideways scrolling (its table scrolls in itself)."""
    metrics = {"width": 640, "height": 700, "deviceScaleFactor": 2, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        browser.get(url)
        until("the page at 200 %", lambda: browser.find_elements(By.ID, "main"))
        wide, shown = browser.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];"
        )
        assert wide <= shown, f"{url} is {wide} px wide at 200 %, {shown} shown"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
