"""Integration tests skip loudly without the sandbox, and FAIL instead under CI=true or
REQUIRE_SANDBOX=1, so a run meant to test against real parts cannot pass without them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/integration/test_sandbox_basics.py"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def _pytest(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "REQUIRE_SANDBOX")}
    clean["SANDBOX_BASE_URL"] = f"http://127.0.0.1:{_closed_port()}/fhir"
    return subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sandbox_unreachable__by_default__integration_tests_skipped_loudly() -> None:
    run = _pytest()
    assert run.returncode == 0, run.stdout[-2000:]
    assert "skipped" in run.stdout
    assert "HAPI FHIR sandbox UNREACHABLE" in run.stdout


@pytest.mark.parametrize("demand", [{"CI": "true"}, {"REQUIRE_SANDBOX": "1"}])
def test_sandbox_unreachable__when_demanded__integration_tests_fail(demand: dict[str, str]) -> None:
    run = _pytest(**demand)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "failed" in run.stdout
    assert "unreachable" in run.stdout
