"""`adapter pull` and `adapter conflicts` as commands: exit statuses and what they print."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import responses

from adapter.cli import EXIT_CONFIG_ERROR, main
from adapter.commands.pull import EXIT_BUSY
from adapter.store.accept import Submission, accept
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.schema import sync_state
from adapter.sync.pull.puller import LEASE_NAME
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from tests.unit.mappings.fhircheck import load_example


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("ADAPTER_DATABASE_URL", url)
    return url


def test_pull__no_ehr_configured__exit_2_naming_the_variable(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "")
    assert main(["pull"]) == EXIT_CONFIG_ERROR
    assert "ADAPTER_EHR_BASE_URL" in capsys.readouterr().err


def test_pull__empty_store__nothing_to_ask_exit_0_with_summary(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "https://ehr.test/fhir")
    assert main(["pull"]) == 0
    assert "pull: 0 versions read in 0 pages over 0 channels" in capsys.readouterr().err


@responses.activate
def test_pull__another_pull_holds_the_lease__exit_5_nothing_done(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "https://ehr.test/fhir")
    statement = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance"}
    responses.add(responses.GET, "https://ehr.test/fhir/metadata", json=statement)
    engine = create_store_engine(database)
    upgrade(engine)
    lease = {
        "owner": f"{socket.gethostname()}:{os.getpid()}:service",
        "until": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
    }
    with write_transaction(engine) as conn:
        sub = load_example("esketamine-session")
        ctx = MappingContext(tenant="clinic-a")
        doc = Submission("clinic-a", "encounter", sub.encounter_id, sub.patient.mrn, "e", b"{}")
        accept(conn, doc, map_submission(sub, ctx), ctx, datetime.now(UTC))
        conn.execute(
            sync_state.insert().values(
                tenant="clinic-a",
                name=LEASE_NAME,
                value=orjson.dumps(lease).decode(),
                updated_at=datetime.now(UTC),
            )
        )
    engine.dispose()
    assert main(["pull", "--tenant", "clinic-a"]) == EXIT_BUSY
    assert "another pull is running" in capsys.readouterr().err


def test_conflicts__none__empty_list_exit_0(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conflicts"]) == 0
    assert "conflicts: 0 listed" in capsys.readouterr().err


def test_conflicts_resolve__unknown_id__exit_1_saying_so(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conflicts", "resolve", "99", "--keep", "ehr"]) == 1
    assert "no open conflict 99" in capsys.readouterr().err


def test_conflicts_resolve__side_required() -> None:
    with pytest.raises(SystemExit):
        main(["conflicts", "resolve", "1"])


def test_pull__tenant_the_store_does_not_hold__exit_2_naming_the_option(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "https://ehr.test/fhir")
    assert main(["pull", "--tenant", "clinic-b"]) == EXIT_CONFIG_ERROR
    assert "--tenant: the store holds nothing for tenant 'clinic-b'" in capsys.readouterr().err
