"""Write an export job's NDJSON files: one file per type (split past a size), streamed.

`run_export` reads each type as of the job's `transactionTime` (`adapter.store.export_read`)
and writes every resource as `/fhir` serves it (`stored_resource`: the stored JSON, labels
included, with `meta.versionId`/`lastUpdated` spliced in), one per line, never holding more
than a row batch in memory. Past `max_per_file` resources a type goes on in a next file.
With `_since`, what was deleted after it is listed in `deleted` files (the IG's Bundles of
`DELETE` entries). Every `BEAT_SECONDS` it records its progress (`beat`); a cancelled job
(its row gone) stops it, and its folder is removed. A failure ends the job as failed with
the error's class (never its message, which could quote data).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson

from adapter.api.fhir.common import stored_resource
from adapter.api.fhir.params import parse_search
from adapter.errors import ExportCancelled
from adapter.export.request import GROUP, ExportRequest
from adapter.store import export_jobs
from adapter.store.engine import Connection, Engine
from adapter.store.export_jobs import ExportFile, ExportJob
from adapter.store.export_read import ExportRow, patient_keys_of, resources_as_of
from adapter.store.search import page, take_snapshot
from adapter.store.search_query import Position

log = logging.getLogger(__name__)

BEAT_SECONDS = 2.0
WRITE_BUFFER = 1024 * 1024
FILTER_PAGE = 1000
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_KEPT = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class ExportPlan:
    """Where and how a job writes: its folder, file size, clock, retention and groups."""

    folder: Path
    max_per_file: int
    clock: Callable[[], datetime]
    retention: timedelta
    group_patients: Collection[str] | None = None
    """The logical ids of the Group's Patients; None: every Patient of the tenant."""


def run_export(engine: Engine, job: ExportJob, plan: ExportPlan) -> None:
    """Write the job's files and mark it completed, or failed saying why."""
    request = ExportRequest.from_json(job.parameters)
    try:
        _Writer(engine, job, plan).write(request)
    except ExportCancelled:
        shutil.rmtree(plan.folder, ignore_errors=True)
        log.info("export %s: cancelled", job.public_id)
        return
    except Exception as exc:  # noqa: BLE001 (any failure ends the job, saying which)
        log.warning("export %s: failed (%s)", job.public_id, type(exc).__name__, exc_info=True)
        shutil.rmtree(plan.folder, ignore_errors=True)
        reason = f"the export failed ({type(exc).__name__}); kick off again"
        export_jobs.fail(engine, job.id, reason, plan.clock(), plan.retention)
        return
    if not export_jobs.finish(engine, job.id, plan.clock(), plan.retention):
        shutil.rmtree(plan.folder, ignore_errors=True)


class _Writer:
    def __init__(self, engine: Engine, job: ExportJob, plan: ExportPlan) -> None:
        self.engine = engine
        self.job = job
        self.plan = plan
        self.number = 0
        self.written = 0
        self.last_beat = 0.0

    def write(self, request: ExportRequest) -> None:
        self.plan.folder.mkdir(parents=True, exist_ok=True)
        self._beat("started")
        with self.engine.connect() as conn:
            keys = self._patient_keys(conn, request)
            deleted: list[str] = []
            for kind in request.types:
                pks = self._filtered(conn, kind, request.type_filters.get(kind))
                rows = resources_as_of(
                    conn,
                    self.job.tenant,
                    kind,
                    self.job.transaction_time,
                    request.since,
                    keys,
                    pks,
                )
                self._write_type(kind, rows, request, deleted)
        if deleted:
            self._write_lines("deleted", "Bundle", iter(deleted))

    def _patient_keys(self, conn: Connection, request: ExportRequest) -> Collection[str] | None:
        """The compartment keys of the Patients exported; None: every Patient's."""
        wanted = set(request.patients) if request.patients else None
        if request.level == GROUP and self.plan.group_patients is not None:
            members = set(self.plan.group_patients)
            wanted = members if wanted is None else members & wanted
        if wanted is None:
            return None
        return set(patient_keys_of(conn, self.job.tenant, wanted).values())

    def _filtered(self, conn: Connection, kind: str, queries: list[str] | None) -> set[int] | None:
        """The keys of what the type's `_typeFilter`s match (any of them), or None: all."""
        if not queries:
            return None
        matched: set[int] = set()
        snapshot = take_snapshot(conn, self.job.transaction_time)
        for text in queries:
            query = parse_search(kind, parse_qsl(text, keep_blank_values=True), strict=True)
            query.count = FILTER_PAGE
            position: Position | None = None
            while True:
                found = page(conn, self.job.tenant, query, snapshot, position)
                matched |= {row.pk for row in found[:FILTER_PAGE]}
                if len(found) <= FILTER_PAGE:
                    break
                last = found[FILTER_PAGE - 1]
                position = Position(last.sort_key, last.pk)
        return matched

    def _write_type(
        self, kind: str, rows: Iterator[ExportRow], request: ExportRequest, deleted: list[str]
    ) -> None:
        def lines() -> Iterator[str]:
            for row in rows:
                if row.deleted:
                    if request.since is not None:
                        deleted.append(_deletion(kind, row.logical_id))
                    continue
                text = stored_resource(row.content, row.version, row.at)
                yield _subset(text, request.elements) if request.elements else text

        self._write_lines("output", kind, lines())

    def _write_lines(self, file_kind: str, kind: str, lines: Iterator[str]) -> None:
        out: IO[str] | None = None
        count = 0
        name = ""
        for line in lines:
            if out is None:
                self.number += 1
                name = f"{self.number:04d}-{kind}.ndjson"
                out = (self.plan.folder / name).open("w", encoding="utf-8", buffering=WRITE_BUFFER)
            out.write(f"{line}\n")
            count += 1
            self.written += 1
            if count % 1000 == 0:
                self._beat(f"{self.written} resources written; now {kind}")
            if count == self.plan.max_per_file:
                self._close(out, file_kind, kind, name, count)
                out, count = None, 0
        if out is not None:
            self._close(out, file_kind, kind, name, count)

    def _close(self, out: IO[str], file_kind: str, kind: str, name: str, count: int) -> None:
        out.close()
        export_jobs.add_file(
            self.engine, self.job.id, ExportFile(self.number, file_kind, kind, name, count)
        )

    def _beat(self, progress: str) -> None:
        now = time.monotonic()
        if now - self.last_beat < BEAT_SECONDS and progress != "started":
            return
        self.last_beat = now
        if not export_jobs.beat(self.engine, self.job.id, progress, self.plan.clock()):
            raise ExportCancelled


def _deletion(kind: str, logical_id: str) -> str:
    entry = {"request": {"method": "DELETE", "url": f"{kind}/{logical_id}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    return orjson.dumps(bundle).decode()


def _subset(text: str, elements: tuple[str, ...]) -> str:
    """The resource with only the `_elements` asked for (and its type, id, meta), tagged
    SUBSETTED as FHIR asks of a partial resource."""
    resource: dict[str, Any] = orjson.loads(text)
    kind = resource["resourceType"]
    wanted = {
        name.split(".")[-1] for name in elements if "." not in name or name.startswith(f"{kind}.")
    }
    kept = {key: value for key, value in resource.items() if key in _KEPT or key in wanted}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return orjson.dumps(kept).decode()
