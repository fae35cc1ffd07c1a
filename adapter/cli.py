"""The `adapter` command line: parse argv, dispatch to a subcommand, return its exit status.

Subcommands live in `adapter.commands` (one module each); this module only assembles them
and turns whatever ends one early into one line on stderr and a documented exit status
(`adapter.commands.exits`), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapter import __version__
from adapter.commands import SUBCOMMANDS, Handler
from adapter.commands.exits import Exit, epilog, failure_line

EXIT_CONFIG_ERROR = Exit.REFUSED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adapter",
        description="FHIR R4 integration adapter for ketamine and esketamine infusion clinics. "
        "Settings come from ADAPTER_* variables (docs/operations.md).",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (Exception, KeyboardInterrupt) as exc:
        status, line = failure_line(exc)
        sys.stderr.write(f"adapter {args.command}: {line}\n")
        return status


if __name__ == "__main__":
    sys.exit(main())
