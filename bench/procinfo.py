"""CPU time of processes the benchmarks start or sit beside, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time used so far by those of `pids` still running (every thread
    of each); a process that ended, even between a look and the read, counts nothing."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def sandbox_cpu_seconds() -> float | None:
    """CPU time used so far by the sandbox's JVM, when it is ours to read (started by
    `sandbox/start` of this checkout, in `SANDBOX_RUN_DIR` when that is set)."""
    run_dir = Path(os.environ.get("SANDBOX_RUN_DIR") or ROOT / ".run")
    try:
        fields = _stat(int((run_dir / "sandbox.pid").read_text().strip()))
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _postgres_processes() -> dict[int, list[str]]:
    """Every PostgreSQL server process on this machine (the postmaster and its children)
    by pid, with its /proc stat fields."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                found[int(entry.name)] = _stat(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


class PostgresCpu:
    """CPU time the PostgreSQL servers of this machine use between `start()` and `seconds()`:
    their live processes' own time, and what the postmasters reaped meanwhile (connections
    that ended), each counted once."""

    def __init__(self) -> None:
        self._before: dict[int, list[str]] = {}

    def start(self) -> None:
        self._before = _postgres_processes()

    def seconds(self) -> float:
        ticks = 0
        for pid, fields in _postgres_processes().items():
            own = int(fields[11]) + int(fields[12])
            reaped = int(fields[13]) + int(fields[14])
            earlier = self._before.get(pid)
            if earlier is not None:
                own -= int(earlier[11]) + int(earlier[12])
                reaped -= int(earlier[13]) + int(earlier[14])
            ticks += own + reaped
        return ticks / os.sysconf("SC_CLK_TCK")
