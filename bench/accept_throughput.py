"""Benchmark: accepting typical encounters into the store, beside mapping them alone.

Run alone: `.venv/bin/python bench/accept_throughput.py [--encounters 500]
[--database-url postgresql+psycopg://...]` (default: a fresh SQLite file).

Both sides take the same N distinct typical encounters (the shared example, every id made
unique, as the integration tests make them), in this process, one after the other:
  map     - contract JSON bytes -> checked model -> FHIR resources (no store)
  accept  - `adapter.ingest.ingest_encounter`: the same, plus the identity rules, the
            resources, versions, search index, submission and outbox entry written in one
            transaction and committed (what `POST /clinic/encounters` does behind HTTP)
Figures: encounters/s and resources/s by wall clock, and this process's CPU seconds per
encounter (`time.process_time`), which a machine busy with other work disturbs much less
than the wall clock. With PostgreSQL, the server's own CPU is not in the second figure.
The ratio accept/map says what storing costs on top of mapping.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import parse_submission  # noqa: E402
from mappings.encounter.submission import map_submission  # noqa: E402
from tests.integration.support import encounters  # noqa: E402


def _documents(count: int) -> list[bytes]:
    return [s.model_dump_json(exclude_none=True).encode() for s in encounters(count)]


def _timed(run: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _store_bytes(engine: Engine) -> int:
    """The database's size on disk: PostgreSQL's own count, or SQLite's pages."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            found = conn.execute(text("SELECT pg_database_size(current_database())"))
            return int(found.scalar_one())
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        return int(pages) * int(conn.execute(text("PRAGMA page_size")).scalar_one())


def _fresh_postgres(url: str) -> tuple[str, str]:
    name = f"bench_accept_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def _drop_postgres(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=500)
    parser.add_argument("--database-url", default="", help="PostgreSQL admin URL; else SQLite")
    args = parser.parse_args()
    ctx = MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:8]}.example")
    documents = _documents(args.encounters)
    resources = sum(len(map_submission(parse_submission(d), ctx)) for d in documents)

    def map_all() -> None:
        for document in documents:
            map_submission(parse_submission(document), ctx)

    with tempfile.TemporaryDirectory() as folder:
        if args.database_url:
            url, name = _fresh_postgres(args.database_url)
        else:
            url, name = f"sqlite:///{Path(folder) / 'store.db'}", ""
        engine = create_store_engine(url)
        upgrade(engine)

        def accept_all() -> None:
            for document in documents:
                ingest_encounter(engine, document, ctx)

        map_wall, map_cpu = _timed(map_all)
        accept_wall, accept_cpu = _timed(accept_all)
        size = _store_bytes(engine)
        engine.dispose()
        if name:
            _drop_postgres(args.database_url, name)
    store = "PostgreSQL" if args.database_url else "SQLite"
    n = args.encounters
    print(f"{n} typical encounters, {resources} resources, store: {store}")
    for label, wall, cpu in (("map", map_wall, map_cpu), ("accept", accept_wall, accept_cpu)):
        print(
            f"  {label:<7} {n / wall:8.1f} encounters/s  {resources / wall:9.0f} resources/s"
            f"  {cpu / n * 1000:6.2f} ms CPU per encounter"
        )
    print(
        f"  accept/map: {accept_wall / map_wall:.2f}x wall clock, {accept_cpu / map_cpu:.2f}x CPU"
    )
    print(f"  store size: {size / n / 1024:.1f} KiB per encounter ({size / 2**20:.1f} MiB in all)")


if __name__ == "__main__":
    main()
