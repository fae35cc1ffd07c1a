"""Every failure a person meets on the command line or at startup: one line naming what to
fix, a documented exit status, never a traceback. Each case runs the real `adapter` entry
point in a subprocess, as a person would, against loopback only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adapter.commands.exits import Exit
from adapter.config import ENV_PREFIX, Settings
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

ADAPTER = str(Path(sys.executable).with_name("adapter"))
KEY = "a-key-of-more-than-32-characters-0123456789"
# A person's command does not hang; a server that did start is stopped and fails the test.
COMMAND_TIMEOUT_SECONDS = 120


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _adapter(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env |= {
        "ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "ADAPTER_EHR_BASE_URL": "",
        "ADAPTER_LOG_LEVEL": "WARNING",
        "ADAPTER_PORT": str(_free_port()),
    }
    env |= {ENV_PREFIX + name.upper(): value for name, value in settings.items()}
    return subprocess.run(
        [ADAPTER, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str], status: Exit, *expected: str) -> str:
    """The failure's line (the last one on stderr), checked; the whole of stderr has no trace."""
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == status, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    for text in expected:
        assert text in line
    return line


def _keys_file(tmp_path: Path, entries: object) -> str:
    path = tmp_path / "api-keys.json"
    path.write_text(json.dumps(entries))
    return str(path)


# -- the EHR ----------------------------------------------------------------------------


@pytest.fixture
def store_with_a_patient(tmp_path: Path) -> Path:
    example = EXAMPLES_DIR / "esketamine-session.json"
    assert _adapter(tmp_path, "ingest", str(example)).returncode == 0
    return tmp_path


def test_pull__ehr_down__one_line_naming_the_variable_exit_3(store_with_a_patient: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/fhir"
    done = _adapter(store_with_a_patient, "pull", ehr_base_url=url)
    _one_line(done, Exit.EHR_FAILED, "ADAPTER_EHR_BASE_URL", "cannot reach the EHR", "running")


class _HtmlPages(BaseHTTPRequestHandler):
    """A web server where a FHIR server was expected: an HTML page at every path."""

    def do_GET(self) -> None:
        body = b"<!doctype html><html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def html_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_pull__ehr_url_answers_html__one_line_asking_for_the_fhir_base_exit_3(
    store_with_a_patient: Path, html_site: str
) -> None:
    done = _adapter(store_with_a_patient, "pull", ehr_base_url=html_site)
    _one_line(done, Exit.EHR_FAILED, "ADAPTER_EHR_BASE_URL", "an HTML page", "FHIR base URL")


# -- the database -----------------------------------------------------------------------


def test_settings__postgres_scheme__read_as_postgresql_with_psycopg() -> None:
    settings = Settings(database_url="postgres://clinic:pw@db.example:5432/adapter")
    assert settings.database_url == "postgresql+psycopg://clinic:pw@db.example:5432/adapter"


def test_migrate__postgres_url_of_a_server_not_there__one_line_password_hidden_exit_4(
    tmp_path: Path,
) -> None:
    url = f"postgres://clinic:s3cret-pw@127.0.0.1:{_free_port()}/adapter"
    done = _adapter(tmp_path, "migrate", database_url=url)
    line = _one_line(done, Exit.STORE_FAILED, "ADAPTER_DATABASE_URL", "cannot connect")
    assert "postgresql+psycopg://clinic:***@127.0.0.1" in line
    assert "s3cret-pw" not in done.stderr
    assert "NoSuchModuleError" not in done.stderr


def test_outbox__database_folder_missing__one_line_exit_4(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'store.db'}"
    done = _adapter(tmp_path, "outbox", database_url=url)
    _one_line(done, Exit.STORE_FAILED, "ADAPTER_DATABASE_URL", "folder exists")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://clinic:pw@127.0.0.1/adapter", "SQLite or PostgreSQL"),
        ("postgresql+psycopg2://clinic:pw@127.0.0.1/adapter", "'psycopg2' is not installed"),
        ("not a url", "not a database URL"),
    ],
)
def test_migrate__database_url_that_cannot_work__one_line_exit_2(
    tmp_path: Path, url: str, expected: str
) -> None:
    done = _adapter(tmp_path, "migrate", database_url=url)
    line = _one_line(done, Exit.REFUSED, "ADAPTER_DATABASE_URL", expected)
    assert "pw" not in line


# -- the outbox -------------------------------------------------------------------------


def test_outbox_replay__no_such_entry__says_so_exit_1(store_with_a_patient: Path) -> None:
    done = _adapter(store_with_a_patient, "outbox", "replay", "999")
    assert "Traceback" not in done.stderr
    assert done.returncode == Exit.PROBLEMS
    assert "outbox: no entry 999" in done.stderr
    assert done.stdout == "replayed 0 of 1 entries\n"


def test_outbox_replay__entry_not_parked__says_its_state_exit_1(
    store_with_a_patient: Path,
) -> None:
    done = _adapter(store_with_a_patient, "outbox", "replay", "1")
    assert done.returncode == Exit.PROBLEMS
    assert "entry 1 is pending, not a dead letter or conflict" in done.stderr


# -- the API keys file, at startup ------------------------------------------------------

ENTRY = {"key": KEY, "tenant": "clinic-a", "scopes": ["clinic/encounters.write"]}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([ENTRY | {"key": "too-short-0123456789"}], "entry 1 of 1: key: String should have at"),
        ([ENTRY, ENTRY | {"tenant": "clinic-b"}], "entry 2 repeats the key of entry 1"),
        (
            [ENTRY | {"scopes": ["clinic/encounter.write"]}],
            "entry 1 of 1: scopes.0: unknown scope 'clinic/encounter.write'",
        ),
        ({"key": KEY}, "must hold a JSON list"),
    ],
    ids=["short key", "duplicate key", "unknown scope", "not a list"],
)
def test_serve__bad_keys_file_entry__refused_naming_file_and_entry_exit_2(
    tmp_path: Path, entries: object, expected: str
) -> None:
    path = _keys_file(tmp_path, entries)
    done = _adapter(tmp_path, "serve", api_keys_file=path)
    _one_line(done, Exit.REFUSED, f"ADAPTER_API_KEYS_FILE ({path})", expected)
    assert KEY not in done.stderr
    assert "too-short" not in done.stderr


def test_serve__keys_file_not_json__refused_with_its_position_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    path.write_text(f'[{{"key": "{KEY}",]')
    done = _adapter(tmp_path, "serve", api_keys_file=str(path))
    _one_line(done, Exit.REFUSED, "ADAPTER_API_KEYS_FILE", "is not JSON (line 1, column")
    assert KEY not in done.stderr


def test_serve__keys_file_is_a_folder__refused_telling_how_to_make_it_exit_2(
    tmp_path: Path,
) -> None:
    (tmp_path / "api-keys.json").mkdir()  # what Docker makes of a missing file it mounts
    done = _adapter(tmp_path, "serve", api_keys_file=str(tmp_path / "api-keys.json"))
    _one_line(done, Exit.REFUSED, "ADAPTER_API_KEYS_FILE", "is a folder", "adapter keys new")


def test_serve__several_web_processes_and_a_bad_keys_file__refused_before_any_starts(
    tmp_path: Path,
) -> None:
    path = _keys_file(tmp_path, [ENTRY | {"scopes": ["clinic/encounter.write"]}])
    done = _adapter(tmp_path, "serve", api_keys_file=path, web_workers="2")
    _one_line(done, Exit.REFUSED, "ADAPTER_API_KEYS_FILE", "unknown scope")


def test_keys_check__unreadable_file__refused_naming_it_exit_2(tmp_path: Path) -> None:
    (tmp_path / "keys.json").mkdir()
    done = _adapter(tmp_path, "keys", "check", "--file", "keys.json")
    _one_line(done, Exit.REFUSED, "ADAPTER_API_KEYS_FILE (keys.json): cannot be read")


def test_keys_new__then_check__a_fresh_usable_key_owner_only(tmp_path: Path) -> None:
    made = _adapter(tmp_path, "keys", "new", "--tenant", "clinic-a", "--scope", "clinic/*.*")
    assert made.returncode == Exit.OK, made.stderr
    key = made.stdout.strip()
    assert len(key) >= 32
    path = tmp_path / "api-keys.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == [
        {"key": key, "tenant": "clinic-a", "scopes": ["clinic/*.*"]}
    ]
    again = _adapter(tmp_path, "keys", "new", "--tenant", "clinic-b")
    assert again.stdout.strip() != key
    checked = _adapter(tmp_path, "keys", "check")
    assert checked.returncode == Exit.OK
    assert "2 keys, all usable" in checked.stderr


def test_keys_new__unknown_scope__refused_and_file_left_alone(tmp_path: Path) -> None:
    done = _adapter(tmp_path, "keys", "new", "--tenant", "a", "--scope", "clinic/encounter.write")
    _one_line(done, Exit.REFUSED, "unknown scope 'clinic/encounter.write'")
    assert not (tmp_path / "api-keys.json").exists()


def test_keys_new__every_tenant__admin_scopes_only(tmp_path: Path) -> None:
    refused = _adapter(tmp_path, "keys", "new", "--tenant", "*")
    _one_line(refused, Exit.REFUSED, "a key of every tenant (tenant *) may hold admin/ scopes")
    assert not (tmp_path / "api-keys.json").exists()
    made = _adapter(tmp_path, "keys", "new", "--tenant", "*", "--scope", "admin/*.*")
    assert made.returncode == Exit.OK, made.stderr
    assert _adapter(tmp_path, "keys", "check").returncode == Exit.OK


# -- options ----------------------------------------------------------------------------


def test_unknown_option__usage_line_exit_2(tmp_path: Path) -> None:
    done = _adapter(tmp_path, "pull", "--tenantt", "a")
    _one_line(done, Exit.REFUSED, "unrecognized arguments: --tenantt")
