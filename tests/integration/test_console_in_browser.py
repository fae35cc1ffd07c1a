"""The operator's console in a real browser (Debian's Chromium through Selenium), against a
live `adapter serve` on its own PostgreSQL database and the real sandbox as the EHR.

One scenario, as an operator lives it: sign in; see the counts; a dead letter (the sandbox
holds the patient twice and refuses our update) replayed after fixing its cause; two
conflicts (edited on the sandbox and changed at the clinic) resolved both ways; a reconcile
run and a difference opened; a form sent without its CSRF token refused; sign out; a
clinic's key cannot sign in. Each page's screenshot lands in tests/screenshots/.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from tests.integration.browser import chromium, reload_until, screenshot, until
from tests.integration.operator_support import delete_on_sandbox, patient_held_twice, wait_for
from tests.integration.support import FHIR_JSON, ehr_edit, encounter, own_database, set_phone

pytestmark = pytest.mark.integration

ADMIN = f"console-admin-{uuid.uuid4().hex}"
CLINIC = f"console-clinic-{uuid.uuid4().hex}"
OTHER_CLINIC = f"console-other-clinic-{uuid.uuid4().hex}"
OPERATOR_OF_ALL = f"console-admin-of-every-tenant-{uuid.uuid4().hex}"
START_SECONDS = 120.0


@dataclass(frozen=True)
class Service:
    url: str
    tenant: str
    other_tenant: str
    namespace: str

    def post(self, document: dict[str, Any], key: str = CLINIC) -> dict[str, Any]:
        reply = requests.post(
            f"{self.url}/clinic/encounters", json=document, headers=_bearer(key), timeout=60
        )
        assert reply.status_code in (200, 201), reply.text
        receipt: dict[str, Any] = reply.json()
        return receipt

    def status(self, receipt: dict[str, Any], key: str = CLINIC) -> dict[str, Any]:
        reply = requests.get(f"{self.url}{receipt['status_url']}", headers=_bearer(key), timeout=60)
        found: dict[str, Any] = reply.json()
        return found

    def pushed(self, receipt: dict[str, Any], key: str = CLINIC) -> dict[str, Any]:
        return dict(
            wait_for("the submission pushed", lambda: _if_pushed(self.status(receipt, key)), 180)
        )


def _if_pushed(status: dict[str, Any]) -> dict[str, Any] | None:
    return status if status.get("status") == "pushed" else None


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own: the service pulls and pushes only this test's."""
    with own_database(postgres_url, "console") as url:
        yield url


@pytest.fixture(scope="module")
def service(
    database: str, fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("console")
    tenant = f"console-{uuid.uuid4().hex[:8]}"
    other_tenant = f"console-other-{uuid.uuid4().hex[:8]}"
    keys = [
        {"key": ADMIN, "tenant": tenant, "scopes": ["admin/*.*"]},
        {"key": CLINIC, "tenant": tenant, "scopes": ["clinic/*.*"]},
        {"key": OTHER_CLINIC, "tenant": other_tenant, "scopes": ["clinic/*.*"]},
        {"key": OPERATOR_OF_ALL, "tenant": "*", "scopes": ["admin/*.*"]},
    ]
    (folder / "keys.json").write_text(json.dumps(keys))
    port = _free_port()
    namespace = f"https://fhir.console-{uuid.uuid4().hex[:10]}.example"
    env = {
        **os.environ,
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_API_KEYS_FILE": str(folder / "keys.json"),
        "ADAPTER_NAMESPACE": namespace,
        "ADAPTER_PULL_INTERVAL_SECONDS": "3",
        # A resource deleted on the EHR stays ours, so the reconcile has a difference to show.
        "ADAPTER_PULL_DELETIONS": "false",
        "ADAPTER_LOG_LEVEL": "WARNING",
    }
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("adapter serve to be ready", lambda: _ready(url), START_SECONDS)
        yield Service(url, tenant, other_tenant, namespace)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/ready", timeout=10).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _document(n: int, email: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = encounter(n).model_dump(mode="json", exclude_none=True)
    if email is not None:
        data["patient"]["email"] = email
    return data


def _ehr_reference(status: dict[str, Any], prefix: str) -> list[str]:
    return [
        r["ehr_reference"]
        for r in status["ehr_references"]
        if r["ehr_reference"].startswith(prefix)
    ]


def _sign_in(browser: WebDriver, url: str, credential: str) -> None:
    browser.get(f"{url}/console/sign-in")
    field = browser.find_element(By.ID, "credential")
    field.send_keys(credential)
    field.send_keys(Keys.ENTER)  # the keyboard, as an operator may


def test_console__operator_scenario__in_chromium(
    service: Service, browser: WebDriver, fhir_base_url: str
) -> None:
    url = service.url
    # Two patients pushed, and a third the sandbox holds twice: our update of it is refused.
    first, second = service.post(_document(1)), service.post(_document(2))
    third_document = _document(3)
    twins = patient_held_twice(
        fhir_base_url, service.namespace, service.tenant, third_document["patient"]["mrn"]
    )
    third = service.post(third_document)
    # Another clinic's visit: its operator's business, never this one's.
    other_document = _document(4)
    other = service.post(other_document, OTHER_CLINIC)
    first_status, second_status = service.pushed(first), service.pushed(second)
    service.pushed(other, OTHER_CLINIC)

    _sign_in(browser, url, ADMIN)
    until("the overview", lambda: browser.find_elements(By.ID, "outbox-counts"))
    done = browser.find_element(By.CSS_SELECTOR, '#outbox-counts td[data-state="done"]')
    assert int(done.text) >= 2
    assert browser.find_element(By.ID, "operator-name").text.startswith("key:")
    screenshot(browser, "1-overview")
    # The keyboard: the first Tab reaches the skip link, which leads to the content.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    _never_sees_the_other_tenant(browser, url, service, other_document["encounter_id"])

    # The dead letter: seen with the EHR's status, its cause fixed, replayed from the page.
    reload_until(browser, f"{url}/console/dead-letters", "a dead letter", "input[name=id]")
    assert "HTTP 412" in browser.find_element(By.ID, "parked").text
    screenshot(browser, "2-dead-letters")
    # What it would send: the patient the sandbox holds twice cannot be compared, the
    # encounter is new there; element paths only, no value.
    browser.find_element(By.CSS_SELECTOR, "#parked tbody th a").click()
    assert "412" in _text_of(browser, "entry-summary")
    would_send = browser.find_element(By.TAG_NAME, "main").text
    ambiguous = "PUT Patient by identifier: cannot read the EHR's version (EhrAmbiguousMatch)"
    assert ambiguous in would_send
    assert "PUT Encounter by identifier: new on the EHR" in would_send
    assert third_document["patient"]["mrn"] not in would_send
    assert third_document["patient"]["family_name"] not in would_send
    screenshot(browser, "2-dead-letter-would-send")
    browser.get(f"{url}/console/dead-letters")
    box = browser.find_element(By.CSS_SELECTOR, "input[name=id]")
    delete_on_sandbox(fhir_base_url, f"Patient/{twins[1]}")
    box.send_keys(Keys.SPACE)
    assert box.is_selected()
    browser.find_element(By.ID, "replay").click()
    assert "Replayed 1" in _text_of(browser, "replayed")
    service.pushed(third)

    # Two conflicts: each patient's phone edited on the sandbox, its email at the clinic.
    for n, status in ((1, first_status), (2, second_status)):
        [patient] = _ehr_reference(status, "Patient/")
        kind, _, ehr_id = patient.partition("/")
        ehr_edit(fhir_base_url, kind, ehr_id, set_phone(f"+1 555 01{n}{n}"))
        service.post(_document(n, email=f"patient-{n}@example.org"))
    edited = until("both edits' conflicts", lambda: _conflicts_on(browser, url, "telecom[0].value"))
    assert isinstance(edited, list)
    marked = browser.find_elements(By.CSS_SELECTOR, "tr.differs mark")
    assert any(m.text.startswith("telecom") for m in marked)
    page_text = browser.find_element(By.TAG_NAME, "main").text
    assert "patient-1@example.org" not in page_text
    assert "+1 555 0111" not in page_text
    screenshot(browser, "3-conflicts")
    _parked_entry_would_change_telecom(browser, url)
    browser.get(f"{url}/console/conflicts")
    ours_id, theirs_id = edited
    browser.find_element(By.ID, f"keep-ours-{ours_id}").click()
    assert f"Conflict {ours_id} resolved" in _text_of(browser, "resolved")
    until(
        "the page after keeping ours", lambda: browser.find_elements(By.ID, f"keep-ehr-{theirs_id}")
    )
    browser.find_element(By.ID, f"keep-ehr-{theirs_id}").click()
    until("the second resolution", lambda: f"Conflict {theirs_id}" in _text_of(browser, "resolved"))
    assert _conflicts_on(browser, url, "telecom[0].value") == []
    wait_for(
        "our email on the sandbox (kept ours)",
        lambda: (
            "patient-1@example.org"
            in requests.get(
                f"{fhir_base_url}/{_ehr_reference(first_status, 'Patient/')[0]}",
                headers=FHIR_JSON,
                timeout=60,
            ).text
        ),
    )

    # A reconcile: an Observation deleted on the sandbox is missing there.
    observation = _deletable_observation(
        fhir_base_url, _ehr_reference(second_status, "Observation/")
    )
    browser.get(f"{url}/console/reconcile")
    browser.find_element(By.ID, "start-reconcile").click()
    until(
        "the reconcile to finish",
        lambda: "Done" in browser.find_element(By.ID, "reconcile-state").text,
        300,
    )
    browser.get(f"{url}/console/reconcile?kind=missing+on+the+EHR")
    rows = browser.find_elements(By.CSS_SELECTOR, "#differences tbody tr")
    assert any(observation.split("/")[1] in row.text for row in rows), observation
    browser.find_element(By.CSS_SELECTOR, "details.difference summary").click()
    screenshot(browser, "4-reconcile")

    for name, path in (
        ("5-submissions", f"/console/submissions?encounter={third_document['encounter_id']}"),
        ("6-audit", "/console/audit"),
    ):
        browser.get(f"{url}{path}")
        screenshot(browser, name)
    assert "console-replay" in browser.find_element(By.ID, "audit").text
    _readable_at_double_zoom(browser, url)

    # A form sent without its CSRF token, with the operator's own session: refused.
    session = browser.get_cookie("adapter_console")
    assert session is not None
    assert session.get("httpOnly")
    assert session.get("sameSite") == "Strict"
    forged = requests.post(
        f"{url}/console/dead-letters/replay",
        data={"id": "1"},
        cookies={"adapter_console": session["value"]},
        timeout=60,
    )
    assert forged.status_code == 403
    assert "CSRF" in forged.text

    browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    until("the sign-in page", lambda: browser.find_elements(By.ID, "credential"))
    browser.get(f"{url}/console")
    assert browser.current_url.endswith("/console/sign-in")

    _sign_in(browser, url, CLINIC)
    error = until("the refusal", lambda: browser.find_elements(By.ID, "sign-in-error"))
    assert "admin/console.read" in error[0].text  # type: ignore[index]
    screenshot(browser, "7-clinic-key-refused")

    _operator_of_every_tenant(browser, service, other_document["encounter_id"])


def _readable_at_double_zoom(browser: WebDriver, url: str) -> None:
    """At 200 % zoom (half the CSS pixels across, each drawn twice as large) no page needs
    scrolling sideways: the text wraps, wide tables scroll inside themselves."""
    metrics = {"width": 640, "height": 700, "deviceScaleFactor": 2, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        pages = ("", "/dead-letters", "/conflicts", "/submissions", "/subscriptions", "/reconcile")
        for page in (*pages, "/audit"):
            browser.get(f"{url}/console{page}")
            until(
                f"{page or 'the overview'} at 200 %", lambda: browser.find_elements(By.ID, "main")
            )
            wide, shown = browser.execute_script(
                "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];"
            )
            assert wide <= shown, f"/console{page} is {wide} px wide at 200 %, {shown} shown"
        screenshot(browser, "6-audit-at-200-percent")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _never_sees_the_other_tenant(
    browser: WebDriver, url: str, service: Service, other_encounter: str
) -> None:
    """The operator of one tenant finds nothing of another, even when asking for it."""
    for asked in ("", f"&tenant={service.other_tenant}"):
        browser.get(f"{url}/console/submissions?encounter={other_encounter}{asked}")
        assert "0 submissions found" in browser.find_element(By.ID, "submissions").text
    assert not browser.find_elements(By.ID, "tenant")
    assert service.other_tenant not in browser.page_source


def _parked_entry_would_change_telecom(browser: WebDriver, url: str) -> None:
    """An entry parked on a conflict: its page names the element paths our change would
    alter on the EHR's version (the telecom), never the values."""
    link = reload_until(
        browser,
        f"{url}/console/dead-letters",
        "an entry parked on a conflict",
        "#parked tr.conflict th a",
    )
    link.click()
    paths = until(
        "the paths that would change",
        lambda: browser.find_elements(By.CSS_SELECTOR, "table.diff td code"),
    )
    assert isinstance(paths, list)
    assert any(p.text.startswith("telecom") for p in paths)
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "PUT Patient/" in main
    assert "@example.org" not in main
    assert "+1 555" not in main


def _operator_of_every_tenant(browser: WebDriver, service: Service, other_encounter: str) -> None:
    """A key of every tenant: both tenants' rows, each with its tenant, and a filter."""
    url = service.url
    _sign_in(browser, url, OPERATOR_OF_ALL)
    name = until("the overview", lambda: browser.find_elements(By.ID, "operator-name"))
    assert isinstance(name, list)
    assert "every tenant" in browser.find_element(By.CSS_SELECTOR, "form.sign-out").text
    browser.get(f"{url}/console/submissions?encounter={other_encounter}")
    found = browser.find_element(By.ID, "submissions").text
    assert "1 submissions found" in found
    assert service.other_tenant in found
    browser.get(f"{url}/console/audit")
    trail = browser.find_element(By.ID, "audit").text
    assert service.tenant in trail
    assert service.other_tenant in trail
    Select(browser.find_element(By.ID, "tenant")).select_by_visible_text(service.other_tenant)
    browser.find_element(By.ID, "tenant").submit()
    until("the filtered trail", lambda: f"tenant={service.other_tenant}" in browser.current_url)
    trail = browser.find_element(By.ID, "audit").text
    assert service.other_tenant in trail
    assert service.tenant not in trail
    screenshot(browser, "8-every-tenant-audit")
    browser.get(f"{url}/console/dead-letters")
    assert "Tenant" in browser.find_element(By.ID, "tenant-filter").text


def _conflicts_on(browser: WebDriver, url: str, path: str) -> list[str] | None:
    """Ids of the open conflicts whose differing paths include `path` (None: not two yet)."""
    browser.get(f"{url}/console/conflicts")
    found = [
        str(section.get_attribute("aria-labelledby")).removeprefix("conflict-")
        for section in browser.find_elements(By.CSS_SELECTOR, "section.conflict")
        if path in section.text
    ]
    return found if len(found) != 1 else None


def _text_of(browser: WebDriver, element_id: str) -> str:
    """The text of the element with `element_id`, once the page showing it has loaded."""
    found = until(element_id, lambda: browser.find_elements(By.ID, element_id))
    assert isinstance(found, list)
    return str(found[0].text)


def _deletable_observation(base: str, references: list[str]) -> str:
    """Delete an Observation on the sandbox, with the Provenances pointing at it (the
    sandbox refuses to delete what another resource refers to): its reference. One that a
    panel Observation groups (`hasMember`) is passed over."""
    for reference in references:
        found = requests.get(
            f"{base}/Provenance", params={"target": reference}, headers=FHIR_JSON, timeout=60
        )
        found.raise_for_status()
        for entry in found.json().get("entry", []):
            delete_on_sandbox(base, f"Provenance/{entry['resource']['id']}")
        reply = requests.delete(f"{base}/{reference}", headers=FHIR_JSON, timeout=60)
        if reply.status_code in (200, 204):
            return reference
    raise AssertionError("the sandbox refused to delete every Observation")


def test_screenshots_folder__ignored_by_git() -> None:
    ignored = Path(__file__).resolve().parents[2] / ".gitignore"
    assert "tests/screenshots/" in ignored.read_text().splitlines()
