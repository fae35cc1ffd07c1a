"""`adapter pull` takes the EHR's changes once; `adapter conflicts` shows and ends conflicts.

adapter pull [--tenant T]                       pull now, with a progress bar and a summary
adapter conflicts [--all] [--tenant T]          open conflicts (with --all: resolved ones too)
adapter conflicts resolve ID --keep ehr|clinic  end one by keeping one side

`pull` exits 1 when a channel failed or a conflict was found, 0 otherwise; another pull
holding the lease (the service's schedule, say) is exit 5: nothing was done. Before any
work it asks the EHR for its CapabilityStatement (three tries, as a channel gets): an EHR
that is down, refuses our credentials or is not a FHIR server at that URL ends the command
at once with one line and exit 3, instead of every channel retrying and failing in turn.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Never

from tqdm import tqdm

from adapter.commands.exits import Exit
from adapter.config import get_settings
from adapter.ehr.client import FhirClient
from adapter.errors import ConfigError, NotFound, PullBusy
from adapter.logs import configure_logging
from adapter.runtime import ehr_client, open_store, puller, worker_name
from adapter.store.engine import Engine, write_transaction
from adapter.store.pull_scope import holds_any
from adapter.sync.ehr_retry import retried
from adapter.sync.pull.conflicts import list_conflicts, resolve
from adapter.sync.pull.merge import Outcome
from adapter.sync.pull.puller import PullSummary
from adapter.sync.push.worker import Backoff

if TYPE_CHECKING:
    from adapter.commands import Subparsers

EXIT_BUSY = Exit.BUSY
PROBE_ATTEMPTS = 3


def add_pull_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pull",
        help="take the EHR's changes into the store, then exit",
        description="Take what changed on the EHR about our patients into the store, from "
        "where the last pull stopped, with a progress bar and a summary (docs/pull-and-"
        "reconcile.md). Safe to stop at any point: the next pull resumes.",
    )
    parser.add_argument("--tenant", help="only this tenant (default: every tenant in the store)")
    parser.set_defaults(handler=run_pull)
    return parser


def add_conflicts_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "conflicts",
        help="resources changed on both sides: list them, keep one side",
        description="Without ACTION: the open conflicts (a resource changed on the EHR while "
        "our change of it waited), one line each with the fields that differ.",
    )
    parser.add_argument("--tenant", help="only this tenant")
    parser.add_argument("--all", action="store_true", help="resolved conflicts too")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    settle = actions.add_parser(
        "resolve",
        help="end a conflict by keeping one side",
        description="End a conflict: --keep ehr makes the EHR's version ours, --keep clinic "
        "sends ours over it; either way the parked outbox entries are queued again.",
    )
    settle.add_argument("id", type=int, help="the conflict's id (from `adapter conflicts`)")
    settle.add_argument(
        "--keep", choices=("ehr", "clinic"), required=True, help="the side whose version stays"
    )
    parser.set_defaults(handler=run_conflicts)
    return parser


def run_pull(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = open_store(settings)
    try:
        if args.tenant is not None and not _holds(engine, args.tenant):
            raise ConfigError(f"--tenant: the store holds nothing for tenant {args.tenant!r}")
        with ehr_client(settings) as client:
            if args.tenant is not None or _holds(engine, None):
                _probe(client)
            with tqdm(unit="page", file=sys.stderr) as bar:
                work = puller(settings, engine, client, "pull", progress=lambda s: _advance(bar, s))
                summary = work.pull(args.tenant)
    except PullBusy:
        sys.stderr.write("pull: another pull is running (its lease is held); nothing done\n")
        return EXIT_BUSY
    finally:
        engine.dispose()
    sys.stderr.write(f"pull: {summary.line()}\n")
    for failure in summary.failed:
        sys.stderr.write(f"pull: failed: {failure}\n")
    return 1 if summary.failed or summary.counts[Outcome.CONFLICT] else 0


def _holds(engine: Engine, tenant: str | None) -> bool:
    """Whether the store holds anything of `tenant` (None: of any tenant)."""
    with engine.connect() as conn:
        return holds_any(conn, tenant)


def _probe(client: FhirClient, sleep: Callable[[float], None] = time.sleep) -> None:
    """Read the EHR's CapabilityStatement, retrying what may pass; its `EhrError` otherwise."""
    backoff = Backoff(base_seconds=1.0, cap_seconds=10.0)
    retried(client.capabilities, attempts=PROBE_ATTEMPTS, backoff=backoff, sleep=sleep)


def _advance(bar: tqdm[Never], summary: PullSummary) -> None:
    bar.update(summary.pages - bar.n)
    bar.set_postfix(versions=summary.received, refresh=False)


def run_conflicts(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = open_store(settings)
    try:
        if args.action == "resolve":
            try:
                with write_transaction(engine) as conn:
                    resolve(
                        conn,
                        args.id,
                        args.keep,
                        ehr_base=settings.ehr_base_url,
                        actor=worker_name("conflicts"),
                        now=datetime.now(UTC),
                    )
            except NotFound as exc:
                sys.stderr.write(f"conflicts: {exc}\n")
                return 1
            sys.stdout.write(f"conflict {args.id} resolved: kept the {args.keep} version\n")
            return 0
        with engine.connect() as conn:
            found = list_conflicts(conn, args.tenant, include_resolved=args.all)
        for c in found:
            what = "deleted on the EHR" if c.ehr_deleted else f"{len(c.changes)} fields differ"
            end = f"\tresolved: kept {c.resolution}" if c.resolution else ""
            sys.stdout.write(
                f"{c.id}\t{c.tenant}\t{c.key}\tours v{c.local_version}\tEHR v{c.ehr_version}\t"
                f"{c.detected_at.isoformat()}\t{what}{end}\n"
            )
            for change in c.changes:
                sys.stdout.write(f"\t{change}\n")
        sys.stderr.write(f"conflicts: {len(found)} listed\n")
        return 0
    finally:
        engine.dispose()
