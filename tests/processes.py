"""For tests that start processes: whether one still runs (Linux /proc)."""

from __future__ import annotations

import time
from pathlib import Path


def is_running(pid: int) -> bool:
    """True while `pid` exists and has not ended (an ended child nobody reaped is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_ended(pid: int, what: str, seconds: float = 60) -> None:
    """Poll until `pid` has ended; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while is_running(pid):
        assert time.monotonic() < deadline, f"{what} was still running after {seconds:.0f} s"
        time.sleep(0.2)
