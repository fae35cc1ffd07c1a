"""Each console page does what issue 18 lists: the overview's figures and its refresh, the
submissions' three searches, the reconcile's browsing by patient and kind, the audit
filters; each action needs its own scope; the cookie is `Secure` over TLS; every field has
a label."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from adapter.console.reconcile_run import ReconcileRun, Reconciles
from adapter.store.schema import DEAD, outbox, submissions
from adapter.sync.reconcile.compare import Difference
from tests.unit.adapter.api.conftest import (
    WRITER_A,
    post_encounter,
    sentinel_document,
    settings_for,
    write_keys,
)
from tests.unit.adapter.console.conftest import (
    ADMIN,
    VIEWER,
    csrf_of,
    engine_of,
    sign_in,
    signing_in,
)

PAGES = (
    "",
    "/dead-letters",
    "/conflicts",
    "/submissions",
    "/subscriptions",
    "/reconcile",
    "/audit",
)


def _one_dead_letter(client: TestClient) -> int:
    assert post_encounter(client, sentinel_document(), WRITER_A).status_code in (200, 201)
    with engine_of(client).begin() as conn:
        conn.execute(
            update(outbox).values(
                state=DEAD, attempts=3, last_status=422, last_error="EhrRejected: HTTP 422"
            )
        )
        return int(conn.execute(select(outbox.c.id)).scalar_one())


def test_overview__last_push_with_its_result__and_refreshes_itself(client: TestClient) -> None:
    entry = _one_dead_letter(client)
    assert sign_in(client, ADMIN) == 303
    page = client.get("/console").text
    assert 'hx-get="/console"' in page
    assert 'hx-trigger="every 10s"' in page
    last_push = re.search(r'<p id="last-push">(.*?)</p>', page, flags=re.S)
    assert last_push is not None
    assert f"/console/dead-letters/{entry}" in last_push.group(1)
    assert "refused (HTTP 422, EhrRejected)" in last_push.group(1)
    assert 'data-state="dead">1<' in page
    fragment = client.get("/console", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert 'id="outbox-counts"' in fragment


def test_overview__nothing_pushed_yet__last_push_never(client: TestClient) -> None:
    assert sign_in(client, ADMIN) == 303
    assert re.search(r'<p id="last-push">Last push: never\.</p>', client.get("/console").text)


def test_submissions__found_by_submission_id_encounter_id_or_day(client: TestClient) -> None:
    assert post_encounter(client, sentinel_document(), WRITER_A).status_code in (200, 201)
    with engine_of(client).connect() as conn:
        public_id, received = conn.execute(
            select(submissions.c.public_id, submissions.c.received_at)
        ).one()
    day = received.date().isoformat()
    assert sign_in(client, ADMIN) == 303
    for query in (f"submission={public_id}", "encounter=ENC-SENTINEL-42", f"received={day}"):
        page = client.get(f"/console/submissions?{query}").text
        assert "1 submissions found" in page, query
        assert public_id in page, query
    assert "0 submissions found" in client.get("/console/submissions?received=2001-01-01").text
    assert client.get("/console/submissions?received=not-a-day").status_code == 422


def test_reconcile__differences_browsed_by_patient_and_kind(client: TestClient) -> None:
    runs: Reconciles = client.app.state.console_reconciles  # type: ignore[attr-defined]
    run = ReconcileRun("clinic-a", "key:test", datetime.now(UTC), total=3, done=3, finished=True)
    run.differences = [
        Difference("clinic-a", "p1", "Observation", "o1", None, "missing on the EHR"),
        Difference("clinic-a", "p2", "Observation", "o2", "9", "differs", ("valueQuantity",)),
        Difference("clinic-a", None, "Organization", "org", "3", "differs", ("name",)),
    ]
    runs._runs["clinic-a"] = run
    runs._runs["clinic-b"] = ReconcileRun("clinic-b", "key:other", datetime.now(UTC))
    assert sign_in(client, ADMIN) == 303

    def rows(query: str) -> list[str]:
        page = client.get(f"/console/reconcile?{query}").text
        body = page.split('id="differences"', 1)[1].split("</tbody>", 1)[0]
        return re.findall(r"<tr><td>(.*?)</td>", body)

    assert rows("") == ["p1", "p2", "(shared)"]
    assert rows("patient=p2") == ["p2"]
    assert rows("patient=(shared)") == ["(shared)"]
    assert rows("kind=missing+on+the+EHR") == ["p1"]
    assert rows("patient=p2&kind=missing+on+the+EHR") == []
    assert "key:other" not in client.get("/console/reconcile").text


def test_audit__filtered_by_agent_outcome_and_date(client: TestClient) -> None:
    assert post_encounter(client, sentinel_document(), WRITER_A).status_code in (200, 201)
    assert sign_in(client, ADMIN) == 303
    agent = _agent_of_a_clinic_row(client)
    assert _audit_rows(client, f"agent={agent}") >= 1
    assert _audit_rows(client, f"agent={agent}&outcome=0") >= 1
    assert _audit_rows(client, f"agent={agent}&outcome=8") == 0
    assert _audit_rows(client, "agent=key:00000000") == 0
    assert _audit_rows(client, "date=lt2001-01-01") == 0
    assert _audit_rows(client, "date=ge2001-01-01") >= 1
    refused = client.get("/console/audit?outcome=x")
    assert refused.status_code == 400
    assert "outcome" in refused.text
    assert client.get("/console/audit?date=nonsense").status_code == 400


def _audit_rows(client: TestClient, query: str) -> int:
    page = client.get(f"/console/audit?{query}").text
    return page.split('id="audit"', 1)[1].split("</tbody>", 1)[0].count("<tr><td>")


def _agent_of_a_clinic_row(client: TestClient) -> str:
    """The agent of the clinic's POST in the console's trail, once the writer stored it."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"<td>(key:[0-9a-f]{8})</td>", client.get("/console/audit").text)
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError("no clinic row in the audit trail after 30 s")


@pytest.mark.parametrize(
    ("path", "form", "scope"),
    [
        ("/console/dead-letters/replay", {"id": "1"}, "admin/outbox.write"),
        ("/console/conflicts/1/resolve", {"keep": "ehr"}, "admin/conflicts.write"),
        ("/console/reconcile", {}, "admin/reconcile.write"),
        ("/console/subscriptions/0123abcd/restart", {}, "admin/subscriptions.write"),
    ],
)
def test_action__each_needs_its_own_scope(
    client: TestClient, path: str, form: dict[str, str], scope: str
) -> None:
    assert sign_in(client, VIEWER) == 303
    token = csrf_of(client.get("/console").text)
    answer = client.post(path, data=form | {"csrf_token": token})
    assert answer.status_code == 403
    assert scope in answer.text


def test_sign_in__without_its_csrf_token__refused_403(client: TestClient) -> None:
    answer = client.post("/console/sign-in", data={"credential": ADMIN})
    assert answer.status_code == 403
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_session_cookie__over_tls__secure(tmp_path: Path) -> None:
    from adapter.api.app import create_app

    keys = [{"key": ADMIN, "tenant": "clinic-a", "scopes": ["admin/*.*"]}]
    (tmp_path / "keys").mkdir()
    settings = settings_for(tmp_path, api_keys_file=str(write_keys(tmp_path / "keys", keys)))
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        assert app.state.background.migrated.wait(60)
        answer = signing_in(client, ADMIN)
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()


class Fields(HTMLParser):
    """The ids of the fields a person fills in, and the ids labels are for."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.fields.append(str(found.get("id") or f"<{tag} name={found.get('name')}>"))


def test_every_field__on_every_page__has_its_label(client: TestClient) -> None:
    _one_dead_letter(client)
    pages = [client.get("/console/sign-in").text]
    assert sign_in(client, ADMIN) == 303
    pages += [client.get(f"/console{path}").text for path in PAGES]
    for html in pages:
        fields = Fields()
        fields.feed(html)
        assert fields.fields or "Sign in" not in html
        unlabelled = [f for f in fields.fields if f not in fields.labelled]
        assert unlabelled == []
