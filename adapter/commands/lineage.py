"""`adapter lineage Type/id`: where a resource came from, by its EHR id or our logical id.

Prints each delivery that wrote it: when, the EHR version and ETag it got, the outbox
entry, and the clinic submission (kind, its Encounter by our logical id, when received,
document hash), then the delivery's Provenance.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store.entry_subjects import NOT_STORED, encounters
from adapter.store.lineage import traces

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lineage",
        help="trace a resource (Type/id on the EHR, or ours) to its clinic submission",
        description="Every delivery that wrote the resource: when, the EHR version and ETag, "
        "the outbox entry, the clinic submission it came from, and its Provenance.",
    )
    parser.add_argument("reference", help="e.g. Observation/123 (EHR id) or Observation/k1a2...")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    reference = args.reference.split("/_history/")[0]
    engine = open_store(get_settings())
    try:
        with engine.connect() as conn:
            rows = traces(conn, reference)
            # The clinic's encounter id is theirs to know: ours names the encounter here.
            named = encounters(conn, {(row.tenant, row.encounter_key) for row in rows})
    finally:
        engine.dispose()
    if not rows:
        sys.stderr.write(f"lineage: no delivery of {reference} recorded here\n")
        return 1
    for row in rows:
        sys.stdout.write(
            f"{row.at}: {row.resource_key} -> EHR {row.ehr_reference} version {row.ehr_version}"
            f" (ETag {row.ehr_etag}), outbox {row.outbox_id}; from submission {row.submission_id}"
            f" ({row.kind}, encounter {named.get((row.tenant, row.encounter_key), NOT_STORED)},"
            f" received {row.received_at},"
            f" sha256 {row.content_hash})\n  provenance: {row.provenance}\n"
        )
    return 0
