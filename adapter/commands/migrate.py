"""`adapter migrate`: bring the database to the newest schema (the service does it too)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store.migrate import current_revision

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "migrate",
        help="migrate the database to the newest schema",
        description="Bring ADAPTER_DATABASE_URL's database to the newest schema and print its "
        "revision. Safe to repeat; `adapter serve` does it by itself at startup.",
    )
    parser.set_defaults(handler=run)
    return parser


def run(_: argparse.Namespace) -> int:
    engine = open_store(get_settings())
    try:
        sys.stdout.write(f"schema at revision {current_revision(engine)}\n")
    finally:
        engine.dispose()
    return 0
