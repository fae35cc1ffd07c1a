"""`adapter push [--dry-run]` drains the outbox once; `adapter worker` pushes until stopped.

`push` sends everything due now, with a progress bar, and ends with a summary: what it
did, then what still waits and why (backing off, leased by another run, held behind an
earlier entry, parked), so a run that delivered nothing says what it found. Exit 1 when
this run parked entries as dead letters or conflicts. `--dry-run` sends nothing: per
waiting entry it prints the Bundle that would go and, per resource, the field-level
difference from the EHR's current version.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Never

from tqdm import tqdm

from adapter.config import get_settings
from adapter.ehr.client import FhirClient
from adapter.errors import EhrError
from adapter.logs import configure_logging
from adapter.runtime import deliverer, ehr_client, open_store, push_worker
from adapter.store import outbox as box
from adapter.store.engine import Engine
from adapter.store.outbox_listing import unsent
from adapter.sync.field_changes import diff
from adapter.sync.push.payload import Stored, as_ehr_would_hold, build
from adapter.sync.push.worker import PushSummary
from mappings.common.serialize import dumps
from mappings.jsontypes import JsonObject

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_push_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "push",
        help="push everything due in the outbox to the EHR, then exit",
        description="Send everything due in the outbox to the EHR, one transaction Bundle "
        "per entry, with a progress bar and a summary; exit 1 when entries were parked as "
        "dead letters or conflicts.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing; show each Bundle and its difference from the EHR's version",
    )
    parser.set_defaults(handler=run_push)
    return parser


def add_worker_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker",
        help="push outbox entries to the EHR and deliver subscription notifications until "
        "stopped (SIGTERM / Ctrl-C)",
        description="Push outbox entries to the EHR as they come, and deliver the FHIR "
        "Subscriptions' notifications, until SIGTERM or Ctrl-C: for running workers beside the "
        "service (ADAPTER_RUN_WORKER=false).",
    )
    parser.set_defaults(handler=run_worker)
    return parser


def run_push(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = open_store(settings)
    try:
        with ehr_client(settings) as client:
            if args.dry_run:
                return _dry_run(engine, client)
            worker = push_worker(settings, engine, client, "push")
            with tqdm(unit="entry", file=sys.stderr) as bar:
                summary = worker.drain(progress=lambda total: _advance(bar, total))
            now = datetime.now(UTC)
            with engine.connect() as conn:
                left = box.waiting(conn, now)
            paused = client.pace.remaining()
    finally:
        engine.dispose()
    sys.stderr.write(
        f"push: {summary.done} delivered, {summary.retried} to retry later, "
        f"{summary.dead} dead letters, {summary.conflicts} conflicts "
        f"({summary.resources_sent} resources sent)\n"
    )
    sys.stderr.write(waiting_line(left, now, paused) + "\n")
    return 1 if summary.dead or summary.conflicts else 0


def waiting_line(left: box.Waiting, now: datetime, paused: float = 0.0) -> str:
    """What still waits in the outbox after a push, and why, in one line."""
    parts = []
    if left.backing_off:
        due = "" if left.next_due is None else f", next due in {_seconds(left.next_due, now)}"
        parts.append(f"{left.backing_off} backing off{due}")
    if left.leased:
        parts.append(f"{left.leased} leased by another run")
    if left.held_back:
        parts.append(f"{left.held_back} held behind earlier entries")
    parked = left.dead + left.conflict
    if parked:
        parts.append(f"{left.dead} dead letters and {left.conflict} conflicts parked")
    line = "push: waiting: " + ("; ".join(parts) if parts else "nothing")
    if paused > 0:
        line += f"; the EHR asked for a pause (Retry-After), {paused:.0f} s more"
    if parked:
        line += " (`adapter outbox list`)"
    return line


def _seconds(due: datetime, now: datetime) -> str:
    return f"{max(0.0, (due - now).total_seconds()):.0f} s"


def _advance(bar: tqdm[Never], total: PushSummary) -> None:
    bar.update(total.claimed - bar.n)


def run_worker(_: argparse.Namespace) -> int:
    """Push the outbox and deliver the subscriptions' notifications (a thread of its own)
    until stopped; with no EHR configured, deliver notifications only."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = open_store(settings)
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    notify = threading.Thread(
        target=deliverer(settings, engine, "worker").run, args=(stop,), name="adapter-notify"
    )
    notify.start()
    try:
        if settings.is_ehr_configured:
            with ehr_client(settings) as client:
                push_worker(settings, engine, client, "worker").run(stop)
        else:
            stop.wait()
    finally:
        stop.set()
        notify.join()
        engine.dispose()
    return 0


def _dry_run(engine: Engine, client: FhirClient) -> int:
    with engine.connect() as conn:
        waiting = unsent(conn)
        for entry in waiting:
            tenant = entry.tenant
            payload = build(conn, tenant, entry.resource_keys)
            sys.stdout.write(f"=== outbox {entry.id}: {len(payload.items)} resources\n")
            sys.stdout.write(dumps(payload.bundle, pretty=True).decode() + "\n")
            for item in payload.items:
                _show_difference(client, item, as_ehr_would_hold(conn, tenant, item))
    sys.stderr.write(f"push --dry-run: {len(waiting)} entries would be sent; nothing sent\n")
    return 0


def _show_difference(client: FhirClient, item: Stored, ours: JsonObject) -> None:
    kind = item.identity.resource_type
    theirs: JsonObject | None
    try:
        if item.ehr_id is not None:
            theirs = client.read(kind, item.ehr_id).resource
        else:
            found = client.conditional_read_by_identifier(
                kind, item.identity.system, item.identity.value
            )
            theirs = None if found is None else found.resource
    except EhrError as exc:
        sys.stdout.write(f"--- {item.key}: cannot read the EHR's version ({type(exc).__name__})\n")
        return
    if item.deleted:
        verdict = "would be deleted" if theirs is not None else "already absent"
        sys.stdout.write(f"--- {item.key}: {verdict}\n")
        return
    if theirs is None:
        sys.stdout.write(f"--- {item.key}: new on the EHR\n")
        return
    changes = diff(theirs, ours)
    sys.stdout.write(f"--- {item.key}: {len(changes)} field(s) differ\n")
    for change in changes:
        sys.stdout.write(f"    {change}\n")
