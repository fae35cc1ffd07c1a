"""An operator of every tenant (a key with `"tenant": "*"`) sees every tenant's rows, with a
tenant column and filter; an operator of one tenant never sees another tenant's rows, and
neither acts on what it may not see. And the dead letter's page: what would be sent, by
element path only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from adapter.console.reconcile_run import Reconciles
from adapter.store.schema import DEAD, audit, outbox
from tests.unit.adapter.api.conftest import (
    KEYS,
    SENTINELS,
    WRITER_A,
    WRITER_B,
    post_encounter,
    running,
    sentinel_document,
    settings_for,
    write_keys,
)
from tests.unit.adapter.console.conftest import (
    ADMIN,
    OPERATOR_KEYS,
    OPERATOR_OF_ALL,
    csrf_of,
    engine_of,
    sign_in,
)

OPERATOR_OF_A = ADMIN
PAGES = (
    "",
    "/dead-letters",
    "/conflicts",
    "/submissions?encounter={e}",
    "/subscriptions",
    "/reconcile",
    "/audit",
)


def _dead_letters(client: TestClient) -> dict[str, int]:
    """One document of each clinic, its outbox entry made a dead letter: entry id by tenant."""
    document = sentinel_document()
    for key in (WRITER_A, WRITER_B):
        assert post_encounter(client, document, key).status_code in (200, 201)
    with engine_of(client).begin() as conn:
        conn.execute(update(outbox).values(state=DEAD, last_status=412, last_error="EhrConflict"))
        rows = conn.execute(select(outbox.c.tenant, outbox.c.id)).all()
    return {str(tenant): int(entry) for tenant, entry in rows}


def _table_rows(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def test_operator_of_every_tenant__sees_each_tenants_rows_with_their_tenant(
    client: TestClient,
) -> None:
    entries = _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_ALL) == 303
    page = client.get("/console/dead-letters").text
    rows = _table_rows(page, "parked")
    assert len(rows) == 2
    assert any("clinic-a" in row for row in rows)
    assert any("clinic-b" in row for row in rows)
    assert '<th scope="col">Tenant</th>' in page
    assert "every tenant" in page
    only_b = _table_rows(client.get("/console/dead-letters?tenant=clinic-b").text, "parked")
    assert len(only_b) == 1
    assert f"/console/dead-letters/{entries['clinic-b']}" in only_b[0]
    for path in PAGES:
        joined = "&" if "?" in path else "?"
        answer = client.get(f"/console{path.format(e='ENC-SENTINEL-42')}{joined}tenant=clinic-b")
        assert answer.status_code == 200, path
        assert '<select id="tenant" name="tenant">' in answer.text, path
    found = client.get("/console/submissions?encounter=ENC-SENTINEL-42").text
    assert len(_table_rows(found, "submissions")) == 2


def test_operator_of_one_tenant__never_sees_another_tenants_rows(client: TestClient) -> None:
    entries = _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_A) == 303
    for asked in ("", "?tenant=clinic-b", "?tenant="):
        page = client.get(f"/console/dead-letters{asked}").text
        rows = _table_rows(page, "parked")
        assert len(rows) == 1, asked
        assert f"/console/dead-letters/{entries['clinic-a']}" in rows[0]
        assert '<select id="tenant"' not in page
    found = client.get("/console/submissions?encounter=ENC-SENTINEL-42&tenant=clinic-b").text
    assert len(_table_rows(found, "submissions")) == 1
    assert client.get(f"/console/dead-letters/{entries['clinic-b']}").status_code == 403


def test_replay__by_an_operator_of_one_tenant__leaves_another_tenants_entry(
    client: TestClient,
) -> None:
    entries = _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_A) == 303
    token = csrf_of(client.get("/console/dead-letters").text)
    wanted = {"id": [str(entries["clinic-a"]), str(entries["clinic-b"])], "csrf_token": token}
    answer = client.post("/console/dead-letters/replay", data=wanted, follow_redirects=False)
    assert answer.headers["location"].endswith("replayed=1")
    with engine_of(client).connect() as conn:
        states = dict(conn.execute(select(outbox.c.tenant, outbox.c.state)).all())
    assert states == {"clinic-a": "pending", "clinic-b": DEAD}


def test_replay__by_an_operator_of_every_tenant__audited_in_each_tenants_trail(
    client: TestClient,
) -> None:
    entries = _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_ALL) == 303
    token = csrf_of(client.get("/console/dead-letters").text)
    wanted = {"id": [str(e) for e in entries.values()], "csrf_token": token}
    answer = client.post("/console/dead-letters/replay", data=wanted, follow_redirects=False)
    assert answer.headers["location"].endswith("replayed=2")
    trail = _audit_of(client, "console-replay")
    assert {row["tenant"]: row["object"] for row in trail} == {
        tenant: f"outbox:{entry}" for tenant, entry in entries.items()
    }
    shown = client.get("/console/audit?tenant=clinic-b").text
    assert f"outbox:{entries['clinic-b']}" in shown
    assert f"outbox:{entries['clinic-a']}" not in shown


def _audit_of(client: TestClient, action: str, wanted: int = 2) -> list[dict[str, Any]]:
    """The audit rows of `action`, once the writer has stored `wanted` (it writes in the
    background: polled up to 30 s)."""
    import time

    deadline = time.monotonic() + 30
    while True:
        with engine_of(client).connect() as conn:
            rows = conn.execute(select(audit).where(audit.c.action == action)).mappings().all()
        if len(rows) >= wanted or time.monotonic() > deadline:
            return [dict(row) for row in rows]
        time.sleep(0.2)


def test_reconcile__no_ehr_configured__refused_before_the_tenant_is_read(
    client: TestClient,
) -> None:
    _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_ALL) == 303
    token = csrf_of(client.get("/console/reconcile").text)
    refused = client.post("/console/reconcile", data={"csrf_token": token, "tenant": "clinic-z"})
    # No EHR is configured here: refused before the tenant is looked at.
    assert refused.status_code == 403
    assert "no EHR is configured" in refused.text


def test_dead_letter_page__what_would_be_sent__paths_and_ids_only(client: TestClient) -> None:
    entries = _dead_letters(client)
    assert sign_in(client, OPERATOR_OF_A) == 303
    page = client.get(f"/console/dead-letters/{entries['clinic-a']}")
    assert page.status_code == 200
    assert "PUT Patient by identifier" in page.text
    assert "no EHR is configured to compare with" in page.text
    for sentinel in SENTINELS[:-2]:  # the encounter id is an id: shown; the values are not
        assert sentinel not in page.text, sentinel
    assert SENTINELS[-1] not in page.text


@pytest.fixture
def with_ehr(tmp_path: Path) -> Iterator[TestClient]:
    """The app with an EHR configured (nowhere: nothing listens there) and neither push nor
    pull running: a reconcile starts, and fails at its first call to the EHR."""
    from adapter.api.app import create_app

    (tmp_path / "keys").mkdir()
    keys_file = write_keys(tmp_path / "keys", [*KEYS, *OPERATOR_KEYS])
    settings = settings_for(
        tmp_path,
        api_keys_file=str(keys_file),
        ehr_base_url="http://127.0.0.1:9/fhir",
        run_worker=False,
        pull_interval_seconds=0,
    )
    yield from running(create_app(settings))


def _on_the_reconcile_page(client: TestClient, key: str) -> tuple[str, Reconciles]:
    """Both clinics hold a document; the operator of `key` signed in, on the reconcile page:
    the form's CSRF token, and the service's reconciles."""
    _dead_letters(client)
    assert sign_in(client, key) == 303
    runs: Reconciles = client.app.state.console_reconciles  # type: ignore[attr-defined]
    return csrf_of(client.get("/console/reconcile").text), runs


def test_reconcile__operator_of_every_tenant__runs_for_the_tenant_chosen(
    with_ehr: TestClient,
) -> None:
    client = with_ehr
    token, runs = _on_the_reconcile_page(client, OPERATOR_OF_ALL)
    for tenant, why in (("", "choose the tenant"), ("clinic-z", "nothing of tenant clinic-z")):
        refused = client.post("/console/reconcile", data={"csrf_token": token, "tenant": tenant})
        assert refused.status_code == 403
        assert why in refused.text
    started = client.post(
        "/console/reconcile",
        data={"csrf_token": token, "tenant": "clinic-b"},
        follow_redirects=False,
    )
    assert started.headers["location"] == "/console/reconcile?tenant=clinic-b"
    assert [run.tenant for run in runs.latest_of(None)] == ["clinic-b"]
    [row] = _audit_of(client, "console-reconcile", 1)
    assert (row["tenant"], row["actor"][:4]) == ("clinic-b", "key:")


def test_reconcile__operator_of_one_tenant__runs_for_their_own_whatever_asked(
    with_ehr: TestClient,
) -> None:
    client = with_ehr
    token, runs = _on_the_reconcile_page(client, ADMIN)
    client.post("/console/reconcile", data={"csrf_token": token, "tenant": "clinic-b"})
    assert [run.tenant for run in runs.latest_of(None)] == ["clinic-a"]
    assert "clinic-b" not in client.get("/console/reconcile?tenant=clinic-b").text
