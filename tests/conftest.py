"""Fixtures for the real services the integration tests need: the HAPI sandbox, PostgreSQL.

Each fixture probes its service once per session. When it is unreachable, the test is
SKIPPED with a loud reason, unless `CI=true` or `REQUIRE_SANDBOX=1`: then it FAILS, so that
a run which was meant to test against real parts cannot pass without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from tests.receiver import Receiver, receiver

DEFAULT_SANDBOX_BASE_URL = "http://127.0.0.1:8090/fhir"
PROBE_TIMEOUT_SECONDS = 30  # a busy machine: the house waits 30 s for a server

_unavailable_services: dict[str, str] = {}


def must_have_services() -> bool:
    """True when an unreachable service must fail the run instead of skipping."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_SANDBOX") == "1"


def _unavailable(service: str, reason: str) -> NoReturn:
    _unavailable_services[service] = reason
    if must_have_services():
        pytest.fail(
            f"{service} is unreachable and CI=true or REQUIRE_SANDBOX=1 demands it: {reason}",
            pytrace=False,
        )
    pytest.skip(f"!!! {service} UNREACHABLE, integration test NOT RUN: {reason}")


@pytest.fixture(scope="session")
def fhir_base_url() -> str:
    """Base URL of the HAPI FHIR sandbox (`SANDBOX_BASE_URL`), checked to answer /metadata."""
    base = os.environ.get("SANDBOX_BASE_URL", DEFAULT_SANDBOX_BASE_URL).rstrip("/")
    try:
        reply = requests.get(
            f"{base}/metadata",
            headers={"Accept": "application/fhir+json"},
            timeout=PROBE_TIMEOUT_SECONDS,
        )
        is_capability = reply.json().get("resourceType") == "CapabilityStatement"
    except (requests.RequestException, ValueError, AttributeError) as exc:
        _unavailable("HAPI FHIR sandbox", f"GET {base}/metadata failed: {type(exc).__name__}")
    if reply.status_code != 200 or not is_capability:
        _unavailable("HAPI FHIR sandbox", f"GET {base}/metadata answered {reply.status_code}")
    return base


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the test PostgreSQL (`ADAPTER_TEST_POSTGRES_URL`), checked to connect."""
    url = os.environ.get("ADAPTER_TEST_POSTGRES_URL", "")
    if not url:
        _unavailable("PostgreSQL", "ADAPTER_TEST_POSTGRES_URL is not set (scripts/pg-start)")
    engine = create_engine(url, connect_args={"connect_timeout": PROBE_TIMEOUT_SECONDS})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        _unavailable("PostgreSQL", f"cannot connect: {type(exc).__name__}")
    finally:
        engine.dispose()
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for service, reason in _unavailable_services.items():
        verdict = "tests FAILED" if must_have_services() else "tests SKIPPED"
        terminalreporter.write_sep("!", f"{service} unreachable: integration {verdict}", red=True)
        terminalreporter.write_line(f"  {reason}")
        terminalreporter.write_line("  Start it with `make sandbox-start` / scripts/pg-start,")
        terminalreporter.write_line("  or run everything with `make test`.")


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A webhook receiver on loopback (a Subscription's endpoint), for one test."""
    with receiver() as found:
        yield found
