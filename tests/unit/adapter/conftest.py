"""Unit-test isolation for the adapter: no `ADAPTER_*` variable from the caller's shell leaks in."""

from __future__ import annotations

import os

import pytest

from adapter.config import ENV_PREFIX


@pytest.fixture(autouse=True)
def _clean_adapter_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        # ADAPTER_TEST_* tell the tests where their services are; they are not settings.
        if name.startswith(ENV_PREFIX) and not name.startswith(f"{ENV_PREFIX}TEST_"):
            monkeypatch.delenv(name)
