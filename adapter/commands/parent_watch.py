"""A child process that ends when the process that started it ends, however that one ends.

A web process that outlived `adapter serve` would keep its socket, so the port stays taken
and connections reach a process nobody supervises. A parent that stops cleanly stops its
children itself; one that is SIGKILLed (or crashes) cannot. Two guards, so that no way of
dying leaves an orphan:

- On Linux the kernel itself sends SIGTERM to the child when the parent dies
  (`prctl(PR_SET_PDEATHSIG)`), and the child stops gracefully as on any SIGTERM.
  Set after fork, so the parent may already be gone by then: the child compares its parent
  with the one it was started by right after, and ends at once when they differ.
- Everywhere, a thread polls the parent pid: once the child has been re-parented, it sends
  SIGTERM to its own process where the kernel does not, and ends the process outright if
  it is still alive `GRACE_SECONDS` later (a request that never finishes, a blocked loop).

PR_SET_PDEATHSIG fires when the *thread* that started the child ends: children must be
started from a thread that lives as long as the parent (`WebProcesses.run`'s caller).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 0.5
GRACE_SECONDS = 5.0
"""How long a child whose parent died may take to stop gracefully before it is ended."""
ORPHANED = 4
"""The exit code of a child that found its parent gone before it started."""


def end_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid`, which started it, ends (see the module)."""
    by_kernel = _ask_kernel_for_sigterm()
    if os.getppid() != parent_pid:
        log.warning("the process that started this one (%d) has ended; exiting", parent_pid)
        sys.exit(ORPHANED)
    watch = threading.Thread(
        target=_watch, args=(parent_pid, by_kernel), name="parent-watch", daemon=True
    )
    watch.start()


def _ask_kernel_for_sigterm() -> bool:
    """True when the kernel will SIGTERM this process at its parent's death (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)


def _watch(parent_pid: int, by_kernel: bool) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    log.warning("the process that started this one (%d) has ended; stopping", parent_pid)
    if not by_kernel:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    log.error("still running %.0f s after the parent ended: exiting now", GRACE_SECONDS)
    os._exit(ORPHANED)
