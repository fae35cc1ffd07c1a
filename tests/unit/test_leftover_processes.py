"""scripts/leftover-processes, which makes `make test` fail when a process it started outlives
it: a process holding the run's mark in its environment is named (pid and command name),
killed, and fails the check, even once re-parented to init; none, and the check passes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from tests.processes import wait_until_ended

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "leftover-processes"
MARK_NAME = "LEFTOVER_TEST_MARK"


def _check(mark: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MARK_NAME} | {"GRACE_SECONDS": "1"}
    return subprocess.run(
        [str(CHECK), f"{MARK_NAME}={mark}"], env=env, capture_output=True, text=True, timeout=120
    )


def test_orphaned_sleeper_with_the_mark__named_killed__and_the_check_fails() -> None:
    mark = uuid.uuid4().hex
    # The shell prints its sleeper's pid and exits: the sleeper is re-parented, as an
    # orphaned web process would be.
    started = subprocess.run(
        ["bash", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"],
        env=os.environ | {MARK_NAME: mark},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    sleeper = int(started.stdout)
    try:
        done = _check(mark)
        assert done.returncode == 1
        assert f"  {sleeper} sleep\n" in done.stderr
        wait_until_ended(sleeper, "the sleeper the check killed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleeper, signal.SIGKILL)


def test_no_process_with_the_mark__the_check_passes() -> None:
    done = _check(uuid.uuid4().hex)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_make_test_marks_what_it_starts__and_checks_after_stopping_its_services() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "export TEST_RUN_MARK" in script
    cleanup = script[script.index("cleanup() {") :]
    check = 'env -u TEST_RUN_MARK scripts/leftover-processes "TEST_RUN_MARK=$TEST_RUN_MARK"'
    assert cleanup.index("sandbox/stop") < cleanup.index(check)
    assert "|| status=1" in cleanup[cleanup.index(check) :].splitlines()[0]
