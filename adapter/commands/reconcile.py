"""`adapter reconcile [--tenant T] [--json]`: every difference between the store and the EHR.

Per tenant, patient and resource type it compares counts and content hashes (see
`adapter.sync.reconcile.report`) and prints one line per difference, named by ids only (the
patient's logical id, never its MRN; field paths, never values), then a summary line.
`--json` prints the same as one JSON document. Exit status: 0 no difference, 1
differences, 2 a configuration error (no EHR configured, an unknown tenant), 3 the EHR
failed to answer (the error is named; nothing is reported as a difference then).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING

import orjson
from tqdm import tqdm

from adapter.commands.exits import Exit
from adapter.config import Settings, get_settings
from adapter.ehr.client import FhirClient
from adapter.errors import ConfigError
from adapter.logs import configure_logging
from adapter.runtime import ehr_client, open_store
from adapter.store.engine import Engine
from adapter.store.pull_scope import tenants
from adapter.sync.reconcile.compare import KINDS, Difference
from adapter.sync.reconcile.report import Plan, Result, plan, reconcile_tenant

if TYPE_CHECKING:
    from adapter.commands import Subparsers

EXIT_EHR_FAILED = Exit.EHR_FAILED


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare the store with the EHR and report every difference",
        description="Compare, per tenant, patient and resource type, what the store holds with "
        "what the EHR holds, and print every difference by ids and field paths (never values); "
        "exit 1 when there is one (docs/pull-and-reconcile.md).",
    )
    parser.add_argument("--tenant", help="only this tenant (default: every tenant in the store)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # An EhrError ends the command in `adapter.cli` (one line, exit 3): no partial report.
    results = _reconcile_all(settings, args.tenant)
    sys.stdout.write(_as_json(results) if args.json else _as_text(results))
    return 1 if any(result.differences for result in results.values()) else 0


def _reconcile_all(settings: Settings, tenant: str | None) -> dict[str, Result]:
    engine = open_store(settings)
    try:
        plans = _plans(engine, tenant)
        with ehr_client(settings) as client:
            return _reconcile(engine, client, plans, settings.worker_concurrency)
    finally:
        engine.dispose()


def _plans(engine: Engine, tenant: str | None) -> list[Plan]:
    with engine.connect() as conn:
        held = tenants(conn)
        if tenant is not None and tenant not in held:
            raise ConfigError(f"--tenant: the store holds nothing for tenant {tenant!r}")
        return [plan(conn, t) for t in sorted(held) if tenant in (None, t)]


def _reconcile(
    engine: Engine, client: FhirClient, plans: list[Plan], concurrency: int
) -> dict[str, Result]:
    """Each tenant's result, with a progress bar counting patients (and shared resources)."""
    results: dict[str, Result] = {}
    steps = sum(len(p.patients) + 1 for p in plans)
    with tqdm(total=steps, unit="patient", file=sys.stderr) as bar:
        for work in plans:
            results[work.tenant] = reconcile_tenant(
                engine, client, work, concurrency=concurrency, advance=lambda: bar.update()
            )
    return results


def _line(found: Difference) -> str:
    paths = f": {', '.join(found.paths)}" if found.paths else ""
    return (
        f"{found.tenant}\tpatient {found.patient or '(shared)'}\t{found.resource_type}\t"
        f"EHR {found.ehr_id or '-'}\tours {found.our_id or '-'}\t{found.kind}{paths}\n"
    )


def _summary(results: dict[str, Result]) -> dict[str, int | dict[str, int]]:
    result = Result()
    for one in results.values():
        result.add(one)
    kinds = Counter(found.kind for found in result.differences)
    return {
        "tenants": len(results),
        "patients": result.patients,
        "in_store": sum(t.in_store for t in result.tallies.values()),
        "on_ehr": sum(t.on_ehr for t in result.tallies.values()),
        "identical": sum(t.identical for t in result.tallies.values()),
        "differences": len(result.differences),
        "by_kind": {kind: kinds[kind] for kind in KINDS},
    }


def _as_text(results: dict[str, Result]) -> str:
    lines = [_line(found) for result in results.values() for found in result.differences]
    figures = _summary(results)
    kinds = figures["by_kind"]
    assert isinstance(kinds, dict)
    by_kind = ", ".join(f"{kinds[kind]} {kind}" for kind in KINDS)
    lines.append(
        f"reconcile: {figures['differences']} differences ({by_kind}); "
        f"{figures['tenants']} tenants, {figures['patients']} patients, "
        f"{figures['in_store']} resources in the store, {figures['on_ehr']} on the EHR, "
        f"{figures['identical']} identical\n"
    )
    return "".join(lines)


def _as_json(results: dict[str, Result]) -> str:
    report = {
        "summary": _summary(results),
        "counts": {
            tenant: {
                kind: {"in_store": t.in_store, "on_ehr": t.on_ehr, "identical": t.identical}
                for kind, t in sorted(result.tallies.items())
            }
            for tenant, result in results.items()
        },
        "differences": [
            {
                "tenant": d.tenant,
                "patient": d.patient,
                "resource_type": d.resource_type,
                "ehr_id": d.ehr_id,
                "our_id": d.our_id,
                "kind": d.kind,
                "paths": list(d.paths),
            }
            for result in results.values()
            for d in result.differences
        ],
    }
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"
