"""`adapter outbox`: what waits, what failed; list, show and replay parked entries.

adapter outbox                      counts by state
adapter outbox list [--state S]     entries (default: dead letters and conflicts)
adapter outbox show ID [--answer]   one entry: its error (--answer: and the EHR's answer)
adapter outbox replay ID [ID...]    put dead letters / conflicts back in the queue

An entry's patient and encounter are shown as our logical ids (`Patient/<id>`), never the
MRN or the clinic's encounter id the store keys it by; the EHR's answer, which may quote
clinical data, only when asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from adapter.commands.exits import Exit
from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store import outbox as box
from adapter.store import outbox_listing
from adapter.store.engine import Connection, Engine, write_transaction
from adapter.store.entry_subjects import EntryKeys, Subject, subjects

if TYPE_CHECKING:
    from adapter.commands import Subparsers

STATES = (box.PENDING, box.IN_FLIGHT, box.DONE, box.DEAD, box.CONFLICT)
REPLAYABLE = (box.DEAD, box.CONFLICT)
# Shown as our logical ids (`Subject`), or only on request (`outcome`), never as stored.
HIDDEN_COLUMNS = frozenset({"patient_key", "encounter_key", "outcome"})


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "outbox",
        help="inspect the outbox; list and replay failures",
        description="Without ACTION: the number of outbox entries in each state. The outbox "
        "holds what waits to be pushed to the EHR, one entry per accepted document.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list entries (default: dead and conflict)",
        description="One line per entry: id, state, tenant, encounter (our logical id), "
        "resources, attempts, the EHR's last HTTP status and error (default: dead letters "
        "and conflicts).",
    )
    listing.add_argument("--state", choices=STATES, action="append", help="repeatable")
    show = actions.add_parser(
        "show",
        help="one entry with its error (and the EHR's answer)",
        description="Every field of one entry and the EHR's last error; its patient and "
        "encounter by our logical ids, never the MRN or the clinic's encounter id.",
    )
    show.add_argument("id", type=int, help="the entry's id (from `adapter outbox list`)")
    show.add_argument(
        "--answer",
        action="store_true",
        help="also print the EHR's last answer as kept (it may quote clinical data)",
    )
    replay = actions.add_parser(
        "replay",
        help="queue dead letters or conflicts again",
        description="Put dead letters and conflicts back in the queue, to be pushed again "
        "(after fixing their cause). An id that is no entry, or not a parked one, is named "
        "and makes the exit status 1.",
    )
    replay.add_argument("ids", type=int, nargs="+", metavar="ID", help="entry ids")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    engine = open_store(get_settings())
    try:
        if args.action == "replay":
            return _replay(engine, args.ids)
        with engine.connect() as conn:
            if args.action == "list":
                states = args.state or [box.DEAD, box.CONFLICT]
                rows = outbox_listing.in_states(conn, states)
                for row, subject in zip(rows, _subjects(conn, rows), strict=True):
                    sys.stdout.write(
                        f"{row.id}\t{row.state}\t{row.tenant}\tencounter {subject.encounter}\t"
                        f"{row.resource_count} resources\tattempts {row.attempts}\t"
                        f"HTTP {row.last_status}\t{row.last_error or ''}\n"
                    )
                return 0
            if args.action == "show":
                return _show(conn, args.id, with_answer=args.answer)
            for state, count in sorted(box.counts(conn).items()):
                sys.stdout.write(f"{state}\t{count}\n")
            return 0
    finally:
        engine.dispose()


def _show(conn: Connection, entry_id: int, *, with_answer: bool) -> int:
    found = outbox_listing.columns(conn, entry_id)
    if found is None:
        sys.stderr.write(f"outbox: no entry {entry_id}\n")
        return 1
    keys = EntryKeys(str(found["tenant"]), str(found["patient_key"]), str(found["encounter_key"]))
    subject = subjects(conn, [keys])[0]
    for name, value in found.items():
        if name == "patient_key":
            sys.stdout.write(f"patient: {subject.patient}\n")
        elif name == "encounter_key":
            sys.stdout.write(f"encounter: {subject.encounter}\n")
        elif name not in HIDDEN_COLUMNS:
            sys.stdout.write(f"{name}: {value}\n")
    if with_answer:
        sys.stdout.write(f"outcome: {found['outcome']}\n")
    elif found["outcome"] is not None:
        sys.stdout.write("outcome: kept (--answer prints it; it may quote clinical data)\n")
    return 0


def _subjects(conn: Connection, rows: Sequence[outbox_listing.Listed]) -> list[Subject]:
    keys = [EntryKeys(row.tenant, row.patient_key, row.encounter_key) for row in rows]
    return subjects(conn, keys)


def _replay(engine: Engine, ids: list[int]) -> int:
    """Queue the dead letters and conflicts among `ids` again; name each id that is not one."""
    wanted = list(dict.fromkeys(ids))
    with write_transaction(engine) as conn:
        states = outbox_listing.states_of(conn, wanted)
        count = box.replay(conn, wanted, datetime.now(UTC))
    for entry_id in wanted:
        state = states.get(entry_id)
        if state is None:
            sys.stderr.write(f"outbox: no entry {entry_id} (`adapter outbox list` shows them)\n")
        elif state not in REPLAYABLE:
            sys.stderr.write(
                f"outbox: entry {entry_id} is {state}, not a dead letter or conflict; left as is\n"
            )
    sys.stdout.write(f"replayed {count} of {len(wanted)} entries\n")
    return Exit.OK if count == len(wanted) else Exit.PROBLEMS
