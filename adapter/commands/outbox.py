"""`adapter outbox`: what waits, what failed; list, show and replay parked entries.

adapter outbox                      counts by state
adapter outbox list [--state S]     entries (default: dead letters and conflicts)
adapter outbox show ID              one entry: its error and the EHR's answer
adapter outbox replay ID [ID...]    put dead letters / conflicts back in the queue
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from adapter.commands.exits import Exit
from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store import outbox as box
from adapter.store.engine import write_transaction
from adapter.store.schema import outbox

if TYPE_CHECKING:
    from adapter.commands import Subparsers

STATES = (box.PENDING, box.IN_FLIGHT, box.DONE, box.DEAD, box.CONFLICT)
REPLAYABLE = (box.DEAD, box.CONFLICT)


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
        description="One line per entry: id, state, tenant, encounter, resources, attempts, "
        "the EHR's last HTTP status and error (default: dead letters and conflicts).",
    )
    listing.add_argument("--state", choices=STATES, action="append", help="repeatable")
    show = actions.add_parser(
        "show",
        help="one entry with its error and the EHR's answer",
        description="Every field of one entry, the EHR's last error and answer included.",
    )
    show.add_argument("id", type=int, help="the entry's id (from `adapter outbox list`)")
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
                rows = conn.execute(
                    select(outbox).where(outbox.c.state.in_(states)).order_by(outbox.c.id)
                ).all()
                for row in rows:
                    sys.stdout.write(
                        f"{row.id}\t{row.state}\t{row.tenant}\tencounter {row.encounter_key}\t"
                        f"{len(row.resource_keys)} resources\tattempts {row.attempts}\t"
                        f"HTTP {row.last_status}\t{row.last_error or ''}\n"
                    )
                return 0
            if args.action == "show":
                found = conn.execute(select(outbox).where(outbox.c.id == args.id)).first()
                if found is None:
                    sys.stderr.write(f"outbox: no entry {args.id}\n")
                    return 1
                for name, value in found._mapping.items():
                    sys.stdout.write(f"{name}: {value}\n")
                return 0
            for state, count in sorted(box.counts(conn).items()):
                sys.stdout.write(f"{state}\t{count}\n")
            return 0
    finally:
        engine.dispose()


def _replay(engine: Engine, ids: list[int]) -> int:
    """Queue the dead letters and conflicts among `ids` again; name each id that is not one."""
    wanted = list(dict.fromkeys(ids))
    with write_transaction(engine) as conn:
        states = dict(
            conn.execute(select(outbox.c.id, outbox.c.state).where(outbox.c.id.in_(wanted))).all()
        )
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
