"""`adapter ingest PATH`: load contract files into the store and the outbox.

Exactly the path of `POST /clinic/encounters`: the same validation, mapping, identity
rules, storage and outbox transaction, one file at a time, so a clinic's history can be
loaded in bulk. Errors as in `adapter map` (`<file>: <field path>: <message>`, exit 1 if
any file was invalid or refused; the others are still accepted): a file whose ids the
identity rules refuse (the service's 409) changes nothing and gets one line per refused
id, naming its field and the id. A folder gets a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from adapter.commands.mapping import contract_files
from adapter.config import get_settings
from adapter.errors import IdConflict
from adapter.ingest import ingest_encounter
from adapter.runtime import mapping_context, open_store
from mappings.errors import ContractViolation

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ingest",
        help="accept contract JSON files into the store and the outbox (as the API does)",
        description="Accept contract JSON files (one, or every *.json in a folder).",
    )
    parser.add_argument("path", type=Path, help="a contract JSON file, or a folder of them")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    files = contract_files(args.path)
    if files is None:
        sys.stderr.write(f"{args.path}: no such file, or a folder without *.json files\n")
        return 1
    engine = open_store(settings)
    ctx = mapping_context(settings)
    counts = {"new": 0, "changed": 0, "unchanged": 0, "invalid": 0, "refused": 0}
    try:
        for source in tqdm(files, unit="file", disable=len(files) == 1, file=sys.stderr):
            try:
                ingested = ingest_encounter(
                    engine,
                    source.read_bytes(),
                    ctx,
                    max_readings=settings.max_readings_per_document,
                )
            except ContractViolation as violation:
                counts["invalid"] += 1
                for error in violation.errors:
                    sys.stderr.write(f"{source}: {error}\n")
                continue
            except IdConflict as conflict:
                counts["refused"] += 1
                for refusal in conflict.refusals:
                    sys.stderr.write(f"{source}: {refusal}\n")
                continue
            except OSError as exc:
                counts["invalid"] += 1
                sys.stderr.write(f"{source}: (file): {exc.strerror or 'cannot read'}\n")
                continue
            result = ingested.result
            kind = "new" if result.created else "changed" if result.changed else "unchanged"
            counts[kind] += 1
    finally:
        engine.dispose()
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    sys.stderr.write(f"ingest: {len(files)} files: {summary}\n")
    return 1 if counts["invalid"] or counts["refused"] else 0
