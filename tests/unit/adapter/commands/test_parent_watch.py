"""A child ends with its parent: at once when the parent is gone before it starts watching,
and through the polling thread where the kernel sends no signal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.commands import parent_watch
from tests.processes import wait_until_ended

ROOT = Path(__file__).resolve().parents[4]

# A grandchild of the test, under a shell the test SIGKILLs: its parent (the shell) dies and
# only the polling thread may notice, as the kernel's signal is switched off.
GRANDCHILD = """
import os, sys, time
from adapter.commands import parent_watch
parent_watch._ask_kernel_for_sigterm = lambda: False
parent_watch.end_with_parent(os.getppid())
print(os.getpid(), flush=True)
time.sleep(600)
"""


def test_parent_already_gone__child_exits_at_once() -> None:
    with pytest.raises(SystemExit) as ended:
        parent_watch.end_with_parent(parent_pid=os.getppid() + 1_000_000)
    assert ended.value.code == parent_watch.ORPHANED


def test_parent_killed__without_the_kernel_signal__polling_thread_ends_the_child() -> None:
    command = ["bash", "-c", f'"{sys.executable}" -c "$0" & wait', GRANDCHILD]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True
    ) as shell:
        try:
            assert shell.stdout is not None
            grandchild = int(shell.stdout.readline())
            shell.kill()
            shell.wait(30)
            wait_until_ended(grandchild, "the orphan")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
