"""CPU time of processes the benchmarks start or sit beside, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time used so far by `pids` (every thread of each)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def sandbox_cpu_seconds() -> float | None:
    """CPU time used so far by the sandbox's JVM, when it is ours to read (started by
    `sandbox/start` of this checkout, in `SANDBOX_RUN_DIR` when that is set)."""
    run_dir = Path(os.environ.get("SANDBOX_RUN_DIR") or ROOT / ".run")
    try:
        pid = int((run_dir / "sandbox.pid").read_text().strip())
        return cpu_seconds([pid])
    except (OSError, IndexError, ValueError):
        return None
