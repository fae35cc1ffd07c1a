"""`adapter map PATH [--out DIR] [--check]`: contract JSON files to transaction Bundles.

Nothing is stored or sent: this is the mapping library on the command line, for a
clinic developer checking their export and an interface analyst reviewing what we write.

- One file without `--out`: the Bundle goes to stdout. A folder (every `*.json` in it, in
  name order) or `--out DIR`: each Bundle is written to `DIR/<input name>.bundle.json`.
- Errors go to stderr, one line each, `<file>: <field path>: <message>`; an invalid file
  does not stop the others, and the exit status is 1 if any input was invalid.
- `--check` also reports to stderr, per file, where every field present went in FHIR and
  whether mapping back gives the record unchanged; a dropped field or a lossy round trip
  makes the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from adapter.config import get_settings
from mappings.bundle import transaction_bundle
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission, parse_submission
from mappings.coverage import field_coverage, round_trip_differences
from mappings.errors import ContractViolation, FieldError
from mappings.serialize import dumps
from mappings.submission import map_submission

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
    parser.add_argument("--namespace", help="identifier namespace (default: ADAPTER_NAMESPACE)")
    parser.add_argument("--tenant", help="tenant name (default: ADAPTER_TENANT)")
    parser.set_defaults(handler=run)
    return parser


@dataclass(frozen=True)
class Outcome:
    bundle: bytes | None
    problems: list[str]


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    ctx = MappingContext(
        namespace=(args.namespace or settings.namespace).rstrip("/"),
        tenant=args.tenant or settings.tenant,
    )
    inputs = contract_files(args.path)
    if inputs is None:
        sys.stderr.write(f"{args.path}: no such file, or a folder without *.json files\n")
        return 1
    to_stdout = args.out is None and args.path.is_file()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for source in inputs:
        outcome = map_file(source, ctx, check=args.check, report=sys.stderr)
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


def map_file(source: Path, ctx: MappingContext, *, check: bool, report: TextIO) -> Outcome:
    """The Bundle of one file, or the problems that kept it from being made or trusted."""
    try:
        sub = parse_submission(source.read_bytes())
    except ContractViolation as violation:
        return Outcome(None, [str(error) for error in violation.errors])
    except OSError as exc:
        return Outcome(None, [str(FieldError("(file)", exc.strerror or "cannot read"))])
    bundle = dumps(transaction_bundle(map_submission(sub, ctx), ctx), pretty=True)
    problems = _check(source, sub, ctx, report) if check else []
    return Outcome(bundle, problems)


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
