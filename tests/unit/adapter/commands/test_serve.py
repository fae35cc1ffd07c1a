"""`adapter serve`: settings and flags reach uvicorn; the port flag is checked."""

from __future__ import annotations

import argparse

import pytest

from adapter.commands import serve


@pytest.mark.parametrize("text", ["0", "65536", "http"])
def test_port_number__not_a_tcp_port__refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        serve.port_number(text)


def test_serve__flags_given__override_settings_passed_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, object] = {}

    def fake_run(app: object, **kwargs: object) -> None:
        seen.update(kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.setattr("adapter.api.app.served", lambda app: app)  # no freeze in tests
    monkeypatch.setattr(serve, "configure_logging", lambda level, log_format: None)
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "")
    monkeypatch.setenv("ADAPTER_DATABASE_URL", "sqlite://")
    args = argparse.Namespace(host="0.0.0.0", port=9001)
    assert serve.run(args) == 0
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 9001)
    assert seen["log_level"] == "info"
    assert seen["access_log"] is False
