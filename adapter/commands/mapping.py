"""`adapter map PATH [--out DIR] [--check]`: contract JSON files to transaction Bundles.

Nothing is stored or sent: this is the mapping library on the command line, for a
clinic developer checking their export and an interface analyst reviewing what we write.
It gives the service's verdict and identifiers under the same settings: the same checks
(a birth date after today's UTC date included), the tenant's namespace as
`ADAPTER_TENANT_NAMESPACES` and the store make it, and, when `ADAPTER_DATABASE_URL` names
a store (read only, never created), the ids it already holds: records kept under the
older id scheme, and the identity rules' refusals (`adapter.identity_rules`). `--no-store`
maps as for an empty store.

- One file without `--out`: the Bundle goes to stdout. A folder (every `*.json` in it, in
  name order) or `--out DIR`: each Bundle is written to `DIR/<input name>.bundle.json`.
- Errors go to stderr, one line each, `<file>: <field path>: <message>` (an id the identity
  rules refuse: its field, and a message naming the id); an invalid file does not stop
  the others, and the exit status is 1 if any input was invalid. A store that cannot be
  read (not migrated to the newest schema, unreachable) is exit status 2.
- `--check` also reports to stderr, per file, where every field present went in FHIR and
  whether mapping back gives the record unchanged; a dropped field or a lossy round trip
  makes the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from adapter import identity_rules
from adapter.config import Settings, get_settings
from adapter.errors import ConfigError
from adapter.ingest import today, utc_now
from adapter.runtime import mapping_context
from adapter.store.database_url import store_exists
from adapter.store.engine import Engine, StoreError, create_store_engine
from adapter.store.migrate import current_revision, head_revision
from adapter.store.tenants import encounter_context
from mappings.claims import encounter_claims
from mappings.common.bundle import transaction_bundle
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission, parse_submission
from mappings.encounter import field_coverage, map_submission, round_trip_differences
from mappings.errors import ContractViolation, FieldError
from mappings.protocol import forbidden

if TYPE_CHECKING:
    from adapter.commands import Subparsers

BUNDLE_SUFFIX = ".bundle.json"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "map",
        help="map contract JSON files to FHIR transaction Bundles (nothing is sent)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("path", type=Path, help="a contract JSON file, or a folder of them")
    parser.add_argument("--out", type=Path, help="write DIR/<name>.bundle.json per input")
    parser.add_argument(
        "--check",
        action="store_true",
        help="report where every field went in FHIR and whether the round trip is lossless",
    )
    parser.add_argument(
        "--namespace", help="base of the identifier namespaces (default: ADAPTER_NAMESPACE)"
    )
    parser.add_argument("--tenant", help="tenant name (default: ADAPTER_TENANT)")
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="map as for an empty store (do not read ADAPTER_DATABASE_URL)",
    )
    parser.set_defaults(handler=run)
    return parser


@dataclass(frozen=True)
class Outcome:
    bundle: bytes | None
    problems: list[str]


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.namespace:
        settings = settings.model_copy(update={"namespace": args.namespace})
    ctx = mapping_context(settings, args.tenant)
    inputs = contract_files(args.path)
    if inputs is None:
        sys.stderr.write(f"{args.path}: no such file, or a folder without *.json files\n")
        return 1
    with read_only_store(None if args.no_store else settings) as store:
        return _map_all(args, inputs, ctx, store)


def _map_all(
    args: argparse.Namespace, inputs: list[Path], ctx: MappingContext, store: Engine | None
) -> int:
    to_stdout = args.out is None and args.path.is_file()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for source in inputs:
        outcome = map_file(source, ctx, check=args.check, report=sys.stderr, store=store)
        failed |= bool(outcome.problems)
        for problem in outcome.problems:
            sys.stderr.write(f"{source}: {problem}\n")
        if outcome.bundle is None:
            continue
        if to_stdout:
            sys.stdout.buffer.write(outcome.bundle + b"\n")
        else:
            target = (args.out or args.path) / (source.stem + BUNDLE_SUFFIX)
            target.write_bytes(outcome.bundle + b"\n")
    return 1 if failed else 0


def contract_files(path: Path) -> list[Path] | None:
    """The file itself, or every `*.json` of a folder in name order (not our own output)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.glob("*.json") if not p.name.endswith(BUNDLE_SUFFIX))
        return found or None
    return None


@contextmanager
def read_only_store(settings: Settings | None) -> Iterator[Engine | None]:
    """The store `settings` name, to read (None: no settings, or no such SQLite file).

    A store must be at the newest schema (the migration decides which records keep older
    identifiers), else `ConfigError`: run `adapter migrate`, or map with `--no-store`.
    """
    if settings is None or not store_exists(settings.database_url):
        yield None
        return
    engine = create_store_engine(settings.database_url)
    try:
        revision = current_revision(engine)
    except StoreError as exc:
        engine.dispose()
        message = f"ADAPTER_DATABASE_URL: the store cannot be read ({type(exc).__name__})"
        raise ConfigError(message) from None
    if revision is not None and revision != head_revision():
        engine.dispose()
        raise ConfigError(
            "ADAPTER_DATABASE_URL: the store is not at the newest schema; run `adapter migrate`"
            " (or map with --no-store)"
        )
    try:
        yield engine if revision is not None else None
    finally:
        engine.dispose()


def map_file(
    source: Path,
    ctx: MappingContext,
    *,
    check: bool,
    report: TextIO,
    store: Engine | None = None,
) -> Outcome:
    """The Bundle of one file, or the problems that kept it from being made or trusted."""
    try:
        sub = parse_submission(source.read_bytes(), today=today(utc_now()))
    except ContractViolation as violation:
        return Outcome(None, [str(error) for error in violation.errors])
    except OSError as exc:
        return Outcome(None, [str(FieldError("(file)", exc.strerror or "cannot read"))])
    # What the protocol forbids first, as `adapter ingest` and the API refuse it (422).
    if sub.infusion is not None and (errors := forbidden(sub.infusion, ctx.protocol, "infusion.")):
        return Outcome(None, [str(error) for error in errors])
    ctx, refused = _as_the_store_sees_it(sub, ctx, store)
    if refused:
        return Outcome(None, refused)
    bundle = dumps(transaction_bundle(map_submission(sub, ctx), ctx), pretty=True)
    problems = _check(source, sub, ctx, report) if check else []
    return Outcome(bundle, problems)


def _as_the_store_sees_it(
    sub: EncounterSubmission, ctx: MappingContext, store: Engine | None
) -> tuple[MappingContext, list[str]]:
    """The tenant's context as the store fixes it, and the identity rules' refusals."""
    if store is None:
        return ctx, []
    with store.connect() as conn:
        ctx = encounter_context(conn, ctx, sub.encounter_id)
        mapped = map_submission(sub, ctx)
        claims = encounter_claims(sub, ctx)
        found = identity_rules.refusals(conn, ctx, claims, mapped, mrn_field="patient.mrn")
    return ctx, [str(refusal) for refusal in found]


def _check(
    source: Path, sub: EncounterSubmission, ctx: MappingContext, report: TextIO
) -> list[str]:
    coverage = field_coverage(sub, ctx)
    lossy = round_trip_differences(sub, ctx)
    dropped = [c.path for c in coverage if c.dropped]
    verdict = "round trip lossless" if not lossy else f"round trip LOSSY in {len(lossy)}"
    report.write(
        f"{source}: coverage: {len(coverage) - len(dropped)} of {len(coverage)} fields present"
        f" reach FHIR; {verdict}\n"
    )
    for item in coverage:
        where = ", ".join(item.targets) if item.targets else "DROPPED"
        report.write(f"  {item.path} -> {where}\n")
    problems = [f"{path}: present but not found in the FHIR output" for path in dropped]
    problems += [f"{path}: does not come back unchanged from FHIR" for path in lossy]
    return problems
