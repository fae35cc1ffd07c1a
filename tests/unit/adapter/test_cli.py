"""The `adapter` command line: help parses, subcommands dispatch, bad settings exit cleanly."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.cli import EXIT_CONFIG_ERROR, build_parser, main
from adapter.commands import migrate, serve
from adapter.commands.exits import EXIT_MEANINGS, Exit, failure_line


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


def _parsers(
    parser: argparse.ArgumentParser, name: str = "adapter"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line, sub-subcommands included, with its command name."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_command__help_has_a_description_and_every_argument_a_help() -> None:
    found = dict(_parsers(build_parser()))
    assert {"adapter keys new", "adapter outbox replay", "adapter conflicts resolve"} <= set(found)
    for name, parser in found.items():
        assert len(parser.description or "") > 30, name
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name}: {action.dest}"


def test_help__epilog_lists_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for status in Exit:
        assert f"  {status:>3}  " in out


def test_exit_statuses__docs_table_matches_the_code() -> None:
    """docs/operations.md's table and `adapter --help` come from one list."""
    page = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", page, re.MULTILINE)
    assert {int(status): meaning for status, meaning in rows} == {
        int(status): meaning for status, meaning in EXIT_MEANINGS.items()
    }


def test_failure_line__unexpected_error__class_only_exit_70() -> None:
    status, line = failure_line(ValueError("MRN 12345 of Jane Doe"))
    assert status == Exit.INTERNAL_ERROR
    assert "ValueError" in line
    assert "12345" not in line


def test_failure_line__ctrl_c__exit_130() -> None:
    assert failure_line(KeyboardInterrupt())[0] == Exit.INTERRUPTED


def test_main__unexpected_error_in_a_command__one_line_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_: object) -> int:
        raise RuntimeError("patient Jane Doe")

    monkeypatch.setattr(migrate, "run", broken)
    assert main(["migrate"]) == Exit.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err == (
        "adapter migrate: internal error (RuntimeError); nothing more is printed, since its "
        "message could quote clinical data: please report it with the command you ran\n"
    )
