"""The `adapter` command line: help parses, subcommands dispatch, bad settings exit cleanly."""

from __future__ import annotations

import pytest

from adapter.cli import EXIT_CONFIG_ERROR, build_parser, main
from adapter.commands import serve


def test_main__help__prints_usage_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "serve" in capsys.readouterr().out


def test_main__serve_help__lists_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out
    assert "--port" in out


def test_main__no_subcommand__usage_error_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_parser__serve_with_flags__dispatches_to_serve_run() -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9001"])
    assert (args.host, args.port) == ("0.0.0.0", 9001)
    assert args.handler is serve.run


def test_parser__serve_port_out_of_range__refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", "70000"])


def test_main__serve_with_bad_setting__exit_2_naming_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "ftp://nope")
    assert main(["serve"]) == EXIT_CONFIG_ERROR
    assert "ADAPTER_EHR_BASE_URL" in capsys.readouterr().err
