"""`adapter reconcile`'s failures: a configuration it cannot use (exit 2), and an EHR that
fails (exit 3, named, no traceback). The EHR is mocked with `responses`; what reconcile
finds on a real EHR is tested against the sandbox (tests/integration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from sqlalchemy import update

from adapter.cli import main
from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store.engine import write_transaction
from adapter.store.schema import resources
from mappings.jsontypes import JsonObject, JsonValue
from tests.store_template import migrated_sqlite
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

BASE = "https://ehr.test/fhir"
READ = re.compile(re.escape(BASE) + r"/Patient/[^/?]+")
SEARCH = re.compile(re.escape(BASE) + r"/[A-Za-z]+\?.*")


@pytest.fixture
def pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One example in the store, every resource acknowledged by the EHR as if pushed."""
    monkeypatch.setenv("ADAPTER_DATABASE_URL", migrated_sqlite(tmp_path / "store.db"))
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", BASE)
    assert main(["ingest", str(EXAMPLES_DIR / "esketamine-session.json")]) == 0
    engine = open_store(get_settings())
    with write_transaction(engine) as conn:
        conn.execute(update(resources).values(ehr_id=resources.c.pk, ehr_version="1"))
    engine.dispose()


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _searchset(next_url: str | None = None) -> JsonObject:
    links: list[JsonValue] = [{"relation": "next", "url": next_url}] if next_url else []
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": []}


def _reconcile_fails(capsys: pytest.CaptureFixture[str], code: str) -> str:
    capsys.readouterr()
    assert main(["reconcile"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "adapter reconcile: the EHR (ADAPTER_EHR_BASE_URL) failed: " in captured.err
    assert f"[{code}]" in captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_reconcile__ehr_answers_5xx__named_and_exit_3(
    pushed: None, ehr: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr.get(SEARCH, json=_searchset())
    ehr.get(READ, status=503, json={"resourceType": "OperationOutcome", "issue": []})
    err = _reconcile_fails(capsys, "ehr-unavailable")
    assert "HTTP 503 to a read of Patient" in err


def test_reconcile__ehr_refuses_credentials__named_and_exit_3(
    pushed: None, ehr: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr.get(SEARCH, status=401)
    err = _reconcile_fails(capsys, "ehr-auth-failed")
    assert "HTTP 401" in err


def test_reconcile__next_link_leaves_the_base_url__refused_and_not_followed(
    pushed: None, ehr: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr.get(SEARCH, json=_searchset(next_url="https://elsewhere.test/fhir/Practitioner?p=2"))
    ehr.get(READ, json={"resourceType": "Patient", "id": "1"})
    err = _reconcile_fails(capsys, "ehr-bad-response")
    assert "leaves its base URL" in err
    assert all(str(call.request.url).startswith(BASE) for call in ehr.calls)


def test_reconcile__no_ehr_configured__exit_2(
    pushed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "")
    assert main(["reconcile"]) == 2
    assert "ADAPTER_EHR_BASE_URL" in capsys.readouterr().err


def test_reconcile__unknown_tenant__exit_2_naming_the_option(
    pushed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reconcile", "--tenant", "clinic-nobody"]) == 2
    assert "--tenant" in capsys.readouterr().err
