"""The `adapter` CLI's subcommands: one module each, listed in `SUBCOMMANDS`.

A subcommand module provides `add_parser(subparsers)`, which adds its parser and sets
`handler=run` on it, and `run(args) -> int` (the exit status). To add one (`map`, `ingest`,
`push`, ...), write its module beside `serve.py` and append its `add_parser` below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from adapter.commands import (
    copy_store,
    ingest,
    keys,
    lineage,
    mapping,
    migrate,
    outbox,
    pull,
    push,
    reconcile,
    rems,
    serve,
)

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

AddParser: TypeAlias = "Callable[[Subparsers], argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]

SUBCOMMANDS: tuple[AddParser, ...] = (
    serve.add_parser,
    mapping.add_parser,
    ingest.add_parser,
    push.add_push_parser,
    push.add_worker_parser,
    outbox.add_parser,
    pull.add_pull_parser,
    pull.add_conflicts_parser,
    lineage.add_parser,
    reconcile.add_parser,
    rems.add_parser,
    migrate.add_parser,
    copy_store.add_parser,
    keys.add_parser,
)
