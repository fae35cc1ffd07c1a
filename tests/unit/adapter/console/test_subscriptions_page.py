"""The console's *Subscriptions* page and its *Restart delivery* (issue 22): those in error
first, the receiver by its origin only (never a path, a query, a user part or a channel
header), the last error by its class only; each operator sees and restarts their own
tenant's only; the overview counts those in error."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from adapter.console.subscription_rows import origin
from adapter.store import audit
from adapter.store import subscriptions as store
from adapter.store.schema import subscriptions
from adapter.store.subscription_topics import ALERT, ENCOUNTER
from tests.receiver import Receiver
from tests.subscription_clients import deliverer, drain
from tests.unit.adapter.api.conftest import (
    KEYS,
    WRITER_A,
    post_encounter,
    running,
    sentinel_document,
    subscriptions_app,
)
from tests.unit.adapter.console.conftest import (
    ADMIN,
    OPERATOR_KEYS,
    OPERATOR_OF_ALL,
    VIEWER,
    csrf_of,
    engine_of,
    sign_in,
)

SECRET_PATH = "/hooks/path-secret-7f3a"
SECRET_QUERY = "token=query-secret-91c2"
SECRET_HEADER = "Authorization: Bearer header-secret-55d0"
SECRET_ANSWER = "the receiver's own words 0e8b"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return subscriptions_app(tmp_path, [*KEYS, *OPERATOR_KEYS])


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


def _subscribe(
    client: TestClient,
    tenant: str,
    endpoint: str,
    *,
    topic: str = ENCOUNTER,
    status: str | None = None,
    failures: int = 0,
    last_error: str | None = None,
) -> str:
    """A subscription of `tenant` made in the store (then set to `status`): its id."""
    spec = store.Spec(
        topic=topic,
        status=store.REQUESTED,
        filters=(),
        endpoint=endpoint,
        content="id-only",
        headers=(SECRET_HEADER,),
        heartbeat_seconds=None,
        timeout_seconds=10,
        max_count=10,
        resource=orjson.dumps({"resourceType": "Subscription"}).decode(),
    )
    now = datetime.now(UTC)
    with engine_of(client).begin() as conn:
        made = store.create(conn, tenant, spec, "http://testserver/fhir", now)
        if status is not None:
            conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == made.pk)
                .values(status=status, failures=failures, last_error=last_error)
            )
    return made.public_id


def _status(client: TestClient, tenant: str, public_id: str) -> str:
    with engine_of(client).connect() as conn:
        found = store.read(conn, tenant, public_id)
    assert found is not None
    return found.status


def _rows(html: str) -> list[str]:
    """The subscription ids of the page's rows, in order."""
    return re.findall(r'<tr class="[^"]*" id="subscription-([0-9a-f]+)">', html)


def _restart(client: TestClient, public_id: str, **form: str) -> httpx2.Response:
    """Press *Restart delivery* of `public_id`, with the session's CSRF token."""
    token = csrf_of(client.get("/console/subscriptions").text)
    return client.post(
        f"/console/subscriptions/{public_id}/restart",
        data={"csrf_token": token} | form,
        follow_redirects=False,
    )


def test_page__error_first_then_by_number__receiver_by_origin_and_error_by_class_only(
    client: TestClient,
) -> None:
    endpoint = f"https://user:password-4411@hooks.example.org:8443{SECRET_PATH}?{SECRET_QUERY}"
    active = _subscribe(client, "clinic-a", endpoint, status=store.ACTIVE)
    failing = _subscribe(
        client,
        "clinic-a",
        "https://other.example.org/hook",
        topic=ALERT,
        status=store.ERROR,
        failures=10,
        last_error=f"ReceiverRefused: {SECRET_ANSWER}",
    )
    waiting = _subscribe(client, "clinic-a", "https://third.example.org/hook")
    assert sign_in(client, ADMIN) == 303
    page = client.get("/console/subscriptions")
    assert page.status_code == 200
    html = page.text
    assert _rows(html) == [failing, active, waiting]
    assert '<a href="/console/subscriptions" aria-current="page">Subscriptions</a>' in html
    assert "https://hooks.example.org:8443<" in html
    assert "https://other.example.org<" in html
    for secret in (SECRET_PATH, SECRET_QUERY, "header-secret", "password-4411", "user:", ".org/"):
        assert secret not in html, secret
    assert SECRET_ANSWER not in html
    failing_row = re.search(rf'id="subscription-{failing}">(.*?)</tr>', html, flags=re.S)
    assert failing_row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", failing_row.group(1), flags=re.S)
    assert [c.strip() for c in cells[:8]] == [
        "alert",
        "error",
        "https://other.example.org",
        "id-only",
        "0",
        "never",
        "10",
        "ReceiverRefused",
    ]
    # Only the one in error (or off) can be restarted.
    assert f'id="restart-{failing}"' in html
    assert f'id="restart-{active}"' not in html
    assert f'id="restart-{waiting}"' not in html


def test_page__none__says_so(client: TestClient) -> None:
    assert sign_in(client, ADMIN) == 303
    html = client.get("/console/subscriptions").text
    assert 'id="no-subscriptions"' in html
    assert 'id="subscriptions-in-error">0<' in client.get("/console").text


def test_page__operator_of_one_tenant__never_sees_another_tenants(client: TestClient) -> None:
    own = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.ERROR)
    _subscribe(client, "clinic-b", "https://b.example.org/hook", status=store.ERROR)
    assert sign_in(client, ADMIN) == 303
    for asked in ("", "?tenant=clinic-b"):
        html = client.get(f"/console/subscriptions{asked}").text
        assert _rows(html) == [own], asked
        assert "b.example.org" not in html
        overview = client.get(f"/console{asked}").text
        assert 'id="subscriptions-in-error" class="bad">1<' in overview


def test_page__operator_of_every_tenant__each_with_its_tenant_and_the_filter(
    client: TestClient,
) -> None:
    own = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.ERROR)
    other = _subscribe(client, "clinic-b", "https://b.example.org/hook", status=store.ERROR)
    assert sign_in(client, OPERATOR_OF_ALL) == 303
    html = client.get("/console/subscriptions").text
    assert _rows(html) == [own, other]
    assert "<td>clinic-b</td>" in html
    assert 'id="tenant-filter"' in html
    assert _rows(client.get("/console/subscriptions?tenant=clinic-b").text) == [other]
    assert 'id="subscriptions-in-error" class="bad">2<' in client.get("/console").text
    overview = client.get("/console?tenant=clinic-b").text
    assert 'href="/console/subscriptions?tenant=clinic-b" id="subscriptions-in-error"' in overview


def test_restart__in_error__requested_then_active_with_the_undelivered_events(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = _subscribe(client, "clinic-a", hook.url)
    hook.answers = [500, 500]
    drain(deliverer(app, max_failures=2))
    with engine_of(client).connect() as conn:
        found = store.read(conn, "clinic-a", made)
    assert found is not None
    assert (found.status, found.failures) == (store.ERROR, 2)
    assert post_encounter(client, sentinel_document(), WRITER_A).status_code in (200, 201)
    assert sign_in(client, ADMIN) == 303
    html = client.get("/console/subscriptions").text
    assert "<td>ReceiverRefused</td>" in html
    assert 'id="subscriptions-in-error" class="bad">1<' in client.get("/console").text

    answer = _restart(client, made)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/subscriptions?restarted={made}"
    with engine_of(client).connect() as conn:
        found = store.read(conn, "clinic-a", made)
        assert found is not None
        assert (found.status, found.failures, found.last_error) == (store.REQUESTED, 0, None)
        # The first handshake (never answered), the new one, and the event: one handshake
        # goes out, and its answer settles both.
        assert store.undelivered(conn, found.pk) == 3
    confirmed = client.get(answer.headers["location"]).text
    assert re.search(rf'<p role="status" id="restarted">Subscription {made} restarted', confirmed)
    assert "Its status now: requested." in confirmed

    drain(deliverer(app, max_failures=2))
    assert [r.kind for r in hook.received] == ["handshake", "event-notification"]
    assert hook.event_numbers() == [1]
    assert 'data-status="active"' in client.get("/console/subscriptions").text
    assert 'id="subscriptions-in-error">0<' in client.get("/console").text
    told = _audited(client, "clinic-a", "console-subscription-restart")
    assert told.object == f"Subscription/{made}"
    assert told.actor.startswith("key:")


def test_restart__off__starts_again(client: TestClient) -> None:
    made = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.OFF)
    assert sign_in(client, ADMIN) == 303
    assert _restart(client, made).status_code == 303
    assert _status(client, "clinic-a", made) == store.REQUESTED


def test_restart__active__refused(client: TestClient) -> None:
    made = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.ACTIVE)
    assert sign_in(client, ADMIN) == 303
    answer = _restart(client, made)
    assert answer.status_code == 403
    assert "only one in error or off restarts" in answer.text


def test_restart__another_tenants__refused_and_left_as_it_was(client: TestClient) -> None:
    other = _subscribe(client, "clinic-b", "https://b.example.org/hook", status=store.ERROR)
    assert sign_in(client, ADMIN) == 303
    for form in ({}, {"tenant": "clinic-b"}):
        answer = _restart(client, other, **form)
        assert answer.status_code == 403, form
        assert f"no subscription {other} here" in answer.text
    assert _status(client, "clinic-b", other) == store.ERROR


def test_restart__operator_of_every_tenant__the_tenant_named_audited_there(
    client: TestClient,
) -> None:
    other = _subscribe(client, "clinic-b", "https://b.example.org/hook", status=store.ERROR)
    assert sign_in(client, OPERATOR_OF_ALL) == 303
    assert _restart(client, other).status_code == 403  # no tenant named
    answer = _restart(client, other, tenant="clinic-b")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(f"?restarted={other}&tenant=clinic-b")
    assert _status(client, "clinic-b", other) == store.REQUESTED
    assert _audited(client, "clinic-b", "console-subscription-restart").actor.startswith("key:")


def test_restart__without_csrf_token__refused_and_left_as_it_was(client: TestClient) -> None:
    made = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.ERROR)
    assert sign_in(client, ADMIN) == 303
    for token in ({}, {"csrf_token": "not-the-sessions"}):
        answer = client.post(f"/console/subscriptions/{made}/restart", data=token)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert _status(client, "clinic-a", made) == store.ERROR


def test_restart__without_its_scope__refused(client: TestClient) -> None:
    made = _subscribe(client, "clinic-a", "https://a.example.org/hook", status=store.ERROR)
    assert sign_in(client, VIEWER) == 303
    html = client.get("/console/subscriptions").text
    assert _rows(html) == [made]  # a viewer sees it
    answer = _restart(client, made)
    assert answer.status_code == 403
    assert "admin/subscriptions.write" in answer.text


def test_page__not_signed_in__to_the_sign_in_page(client: TestClient) -> None:
    answer = client.get("/console/subscriptions", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("https://u:p@Hooks.Example.org/a/b?c=d#e", "https://hooks.example.org"),
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000"),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"),
        ("https://hooks.example.org:99999/x", "(not a valid URL)"),
        ("no-scheme", "(not a valid URL)"),
    ],
)
def test_origin__scheme_host_and_port_only(endpoint: str, shown: str) -> None:
    assert origin(endpoint) == shown


def _audited(client: TestClient, tenant: str, action: str) -> audit.AuditEntry:
    """The audit row of `action` in `tenant`'s trail, once the writer stored it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine_of(client).connect() as conn:
            trail = audit.search(conn, audit.AuditSearch(tenant=tenant, limit=100))
        found = [entry for entry in trail if entry.action == action]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {action} row in {tenant}'s trail after 30 s")
