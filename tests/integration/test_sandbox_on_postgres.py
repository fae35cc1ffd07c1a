"""The sandbox on PostgreSQL (`SANDBOX_DATABASE_URL`): a second sandbox of this work tree, on
its own port and run directory, keeps HAPI's data in a database of its own in the test
PostgreSQL. What it stores is in HAPI's tables there, and its bulk export works as on H2.

The sandbox of the test command (H2) is left alone; this one is started and stopped here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, make_url, text

from tests.integration.bulk_export import run_export
from tests.integration.export_data import (
    FHIR_JSON,
    TIMEOUT,
    exported_ids,
    new_system,
    only,
    write_observations,
    write_patients,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# sandbox/start waits up to SANDBOX_START_TIMEOUT (300 s) itself; HAPI on PostgreSQL creates
# its schema at a first start and starts slower than on H2.
SCRIPT_TIMEOUT_SECONDS = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresSandbox:
    """A sandbox started by sandbox/start with this environment; `database` is HAPI's."""

    env: dict[str, str]
    run_dir: Path
    database: Engine

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SANDBOX_PORT']}/fhir"

    def script(self, name: str) -> None:
        out = self.run_dir.parent / f"sandbox-{name}.out"
        with out.open("wb") as sink:  # a file, not a pipe: nothing can block on it
            done = subprocess.run(
                [f"sandbox/{name}"],
                cwd=ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=SCRIPT_TIMEOUT_SECONDS,
                check=False,
            )
        assert done.returncode == 0, f"sandbox/{name} failed:\n{out.read_text()[-4000:]}"

    def start(self) -> str:
        """Start it unless it answers already; returns its base URL."""
        self.script("start")
        return self.base_url

    def stop(self) -> None:
        self.script("stop")


@pytest.fixture(scope="module")
def postgres_sandbox(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresSandbox]:
    name = f"hapi_sandbox_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name)
    env = {key: value for key, value in os.environ.items() if key != "SANDBOX_DATA_DIR"}
    run_dir = tmp_path_factory.mktemp("postgres-sandbox") / "run"
    env.update(
        SANDBOX_PORT=str(free_port()),
        SANDBOX_RUN_DIR=str(run_dir),
        # The adapter's SQLAlchemy form (postgresql+psycopg://...), which the sandbox accepts.
        SANDBOX_DATABASE_URL=url.render_as_string(hide_password=False),
        # No class-data-sharing archive from this second server: the test command's sandbox
        # records it, and writing one would add 10-30 s to this stop.
        CI="true",
    )
    sandbox = PostgresSandbox(env=env, run_dir=run_dir, database=create_engine(url))
    try:
        yield sandbox
    finally:
        sandbox.stop()
        sandbox.database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_export_on_postgres__system_export__every_resource_in_the_files(
    postgres_sandbox: PostgresSandbox,
) -> None:
    base = postgres_sandbox.start()
    system = new_system()
    patients = write_patients(base, system, 3)
    observations = write_observations(base, system, patients, 5)

    export = run_export(f"{base}/$export", only(system))

    assert export.counts() == {"Patient": 3, "Observation": 5}
    assert exported_ids(export, "Patient") == sorted(patients)
    assert exported_ids(export, "Observation") == sorted(observations)
    with postgres_sandbox.database.connect() as conn:
        binaries = conn.execute(
            text("SELECT count(*) FROM hfj_resource WHERE res_type = 'Binary'")
        ).scalar_one()
    assert binaries >= len(export.manifest["output"])  # the files live in PostgreSQL too


def test_sandbox_on_postgres__patient_written_and_read__in_hapi_tables_after_stop(
    postgres_sandbox: PostgresSandbox,
) -> None:
    base = postgres_sandbox.start()
    system = new_system()
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": mrn}],
        "name": [{"family": "Postgres"}],
    }
    created = requests.post(f"{base}/Patient", json=patient, headers=FHIR_JSON, timeout=TIMEOUT)
    assert created.status_code == 201, created.text[:1000]
    pid = created.json()["id"]
    read = requests.get(f"{base}/Patient/{pid}", headers=FHIR_JSON, timeout=TIMEOUT)
    assert read.status_code == 200
    assert read.json()["identifier"] == patient["identifier"]
    found = requests.get(
        f"{base}/Patient",
        params={"identifier": f"{system}|{mrn}", "_summary": "count"},
        headers=FHIR_JSON,
        timeout=TIMEOUT,
    )
    assert found.json()["total"] == 1

    postgres_sandbox.stop()

    with postgres_sandbox.database.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT v.res_text_vc FROM hfj_resource r"
                " JOIN hfj_res_ver v ON v.res_id = r.res_id AND v.res_ver = r.res_ver"
                " WHERE r.res_type = 'Patient' AND r.fhir_id = :pid"
            ),
            {"pid": pid},
        ).scalar_one()
        indexed = conn.execute(
            text(
                "SELECT count(*) FROM hfj_spidx_token WHERE res_type = 'Patient'"
                " AND sp_name = 'identifier' AND sp_system = :system AND sp_value = :mrn"
            ),
            {"system": system, "mrn": mrn},
        ).scalar_one()
    assert mrn in stored
    assert indexed == 1


def _start_with_database_url(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SANDBOX_DATA_DIR"}
    env.update(
        SANDBOX_PORT=str(free_port()),
        SANDBOX_RUN_DIR=str(tmp_path / "run"),
        SANDBOX_DATABASE_URL=url,
        CI="true",
    )
    return subprocess.run(
        ["sandbox/start"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECONDS,
        check=False,
    )


def test_sandbox_start__database_url_not_postgresql__refused_at_once(tmp_path: Path) -> None:
    started = _start_with_database_url("mysql://clinic:s3cret-pw@127.0.0.1/hapi", tmp_path)

    assert started.returncode == 2
    assert "SANDBOX_DATABASE_URL must start with postgresql://" in started.stderr
    assert "s3cret-pw" not in started.stderr + started.stdout
    assert not (tmp_path / "run" / "sandbox.pid").exists()  # no server was started


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # No database named after the host.
        (
            "postgresql://clinic:s3cret-pw@127.0.0.1:5432",
            "SANDBOX_DATABASE_URL must name one database",
        ),
        # Port 1 refuses: the driver's reason, at start, not at the first request.
        ("postgresql://clinic:s3cret-pw@127.0.0.1:1/hapi", "Connection to 127.0.0.1:1 refused"),
        # The JDBC form goes to the driver as it is, credentials in its query.
        (
            "jdbc:postgresql://127.0.0.1:1/hapi?user=clinic&password=s3cret-pw",
            "Connection to 127.0.0.1:1 refused",
        ),
    ],
)
def test_sandbox_start__unusable_postgres_url__fails_with_the_reason_and_no_password(
    tmp_path: Path, url: str, reason: str
) -> None:
    started = _start_with_database_url(url, tmp_path)

    assert started.returncode == 1
    assert reason in started.stderr
    log = (tmp_path / "run" / "sandbox.log").read_text()
    assert "s3cret-pw" not in started.stderr + started.stdout + log
    assert not (tmp_path / "run" / "sandbox.pid").exists()
