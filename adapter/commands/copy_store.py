"""`adapter copy-store --to URL`: copy the whole store into another, empty database (a
clinic outgrowing SQLite moves to PostgreSQL), keeping every id; the copying itself is
`adapter.store.store_copy`'s."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from adapter.config import get_settings
from adapter.errors import ConfigError, StoreCopyRefused
from adapter.store.database_url import shown_database_url, store_exists, usable_database_url
from adapter.store.engine import check_connection, create_store_engine
from adapter.store.store_copy import StoreCopied, TableCopied, copy_store

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "copy-store",
        help="copy the store into another, empty database (e.g. SQLite to PostgreSQL)",
        description="Copy every row of the store (--from, default ADAPTER_DATABASE_URL) into "
        "the empty database --to, keeping every id: migrate the target to the newest schema, "
        "copy table by table in one transaction, and set PostgreSQL's id sequences past the "
        "copied ids. Stop the service first; then point ADAPTER_DATABASE_URL at the target. "
        "The source must be at the newest schema (`adapter migrate`); a target holding data "
        "is refused and left untouched. Prints each table's row count and the time taken.",
    )
    parser.add_argument(
        "--to", required=True, metavar="URL", dest="target", help="the empty database to fill"
    )
    parser.add_argument(
        "--from",
        metavar="URL",
        dest="source",
        help="the store to copy (default: ADAPTER_DATABASE_URL)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    source_url = _url("--from", args.source) if args.source else get_settings().database_url
    target_url = _url("--to", args.target)
    if target_url == source_url:
        raise ConfigError("--to names the source store itself; give another database")
    if not store_exists(source_url):
        raise StoreCopyRefused(f"no store at {shown_database_url(source_url)} (no such file)")
    source = create_store_engine(source_url)
    target = create_store_engine(target_url)
    try:
        check_connection(source, "--from" if args.source else "ADAPTER_DATABASE_URL")
        check_connection(target, "--to")
        sys.stdout.write(
            f"copying {shown_database_url(source_url)} to {shown_database_url(target_url)}\n"
        )
        _report(copy_store(source, target, _print_table))
    finally:
        source.dispose()
        target.dispose()
    return 0


def _url(option: str, value: str) -> str:
    try:
        return usable_database_url(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _print_table(copied: TableCopied) -> None:
    sys.stdout.write(f"  {copied.table:<28} {copied.rows:>12,} rows\n")
    sys.stdout.flush()


def _report(copied: StoreCopied) -> None:
    rows = sum(t.rows for t in copied.tables)
    sys.stdout.write(
        f"copied {rows:,} rows in {len(copied.tables)} tables in {copied.seconds:.1f} s; "
        "point ADAPTER_DATABASE_URL at the target and start the service\n"
    )
