"""A PgBouncer in transaction-pooling mode in front of the test PostgreSQL, for one test run.

Each transaction of a client may run on a different server connection, so anything a
client leaves on its session (a prepared statement, a `SET`, an advisory lock, a temp
table) is lost or, worse, seen by another client. The adapter must work through it.
Debian's `pgbouncer` is installed by `scripts/pg-start`; the server refuses to run as root,
so as root it runs as the `postgres` OS user, like the test cluster itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

BINARY_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
START_DEADLINE_SECONDS = 60.0


def binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((place for place in BINARY_PLACES if Path(place).is_file()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(postgres_url: str, folder: Path, port: int) -> Path:
    server = make_url(postgres_url)
    database = server.database or "postgres"
    user = server.username or "postgres"
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    config = folder / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"{database} = host={server.host} port={server.port} dbname={database} user={user}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {folder / 'users.txt'}",
                "pool_mode = transaction",
                "max_client_conn = 1000",
                # Few server sessions for many clients: any state a client leaves on one
                # meets another client soon, as in a busy deployment.
                "default_pool_size = 3",
                "ignore_startup_parameters = extra_float_digits,options",
                f"logfile = {folder / 'pgbouncer.log'}",
                f"pidfile = {folder / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    return config


@contextmanager
def pgbouncer(postgres_url: str) -> Iterator[str]:
    """PgBouncer (transaction pooling) in front of `postgres_url`: its URL, same database.

    Its files live in a temp folder of its own (a test's tmp_path is closed to the
    `postgres` user), deleted at the end."""
    program = binary()
    if program is None:
        raise RuntimeError("pgbouncer is not installed (scripts/pg-start installs it)")
    folder = Path(tempfile.mkdtemp(prefix="adapter-test-pgbouncer."))
    port = _free_port()
    config = _config(postgres_url, folder, port)
    command = [program, str(config)]
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        for made in folder.iterdir():
            shutil.chown(made, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_listening(port, process)
        url = make_url(postgres_url).set(host="127.0.0.1", port=port)
        yield url.render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited at start (status {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not listen within {START_DEADLINE_SECONDS:.0f} s")
