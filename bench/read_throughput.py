"""Benchmark: EHRs pulling from our /fhir face, against the sandbox (HAPI FHIR JPA) serving
the same data on the same machine in the same run.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/read_throughput.py [--encounters 1000] [--connections 32]
[--seconds 15] [--store FILE] [--database-url URL] [--sandbox-namespace NS]`
(`--store`: keep our loaded store in FILE, and copy it from there on the next run with as
many encounters, instead of loading it again).

1. The same N typical encounters go into a fresh SQLite store of ours (through the ingest
   path) and into the sandbox (as transaction Bundles, built 200 at a time and posted 4
   at a time; the loading time printed includes building them), under a new
   mapping namespace that the run prints. `--sandbox-namespace NS` (that namespace, from an
   earlier run with as many encounters) finds them in the sandbox instead of loading them
   again (about 25 minutes for 10,000 encounters), after checking that it holds N
   Encounters of that namespace; a sandbox holding none of them is loaded under it (so a
   kept `--store` and a fresh sandbox get the same ids of ours). `--load-only all` stops
   once the stores are filled; `--load-only sandbox` and `--load-only ours` fill one each
   (two runs at once, with one `--sandbox-namespace`).
   `--database-url URL` (issue 21) names an empty PostgreSQL database: our SQLite store is
   copied into it (`adapter.store.store_copy`, as `adapter copy-store` does; or it is kept
   when it holds the same store from an earlier run with the same `--store`). With
   `--postgres-only` our encounters are ingested straight into that database (kept when
   it holds them) and there is no SQLite store: for sizes whose SQLite copy would not fit
   on the disk beside the other two.
2. Our service starts as `adapter serve` (its own processes, no EHR, push worker off),
   with ADAPTER_WEB_WORKERS=--web-workers (default 2, one per core of the machine we
   measured on); with `--database-url` a second one serves the PostgreSQL copy.
3. For each workload, our service(s) and then the sandbox get the same requests from the
   same load generator (`bench/loadgen.py`: asyncio, kept-alive connections), one after
   another, each after a warm-up:
     read       GET Observation/{id}, over a sample of Observation ids
     search     GET Observation?patient={id}&code={system}|{code}&_count=50 (first page)
     everything GET Patient/{id}/$everything
   Printed: requests/s, p50 and p99 latency, failed answers of each, and each one's rate
   over every later one's (`ours / sandbox`; with `--database-url` the rows `ours-PG`,
   `ours-SQLite`, `sandbox` and the ratios ours-PG / ours-SQLite, ours-PG / sandbox and
   ours-SQLite / sandbox). Then each one's CPU per request answered: its own processes
   (ours: the service's; the sandbox: its JVM, read from `SANDBOX_RUN_DIR`'s pid file), the
   PostgreSQL servers of the machine (its store, when on PostgreSQL) and the load
   generator, all sharing the same cores: where the time goes.
4. Our service's resident memory (VmRSS) is sampled while one client pages through every
   Observation of the store by `next` links: it should stay flat, not grow with the pages
   (each of our services in turn).
Targets (issue 5): read throughput at least 2x the sandbox's; p99 under 20 ms for reads and
under 50 ms for the search; memory flat while paging.

`--peer gunicorn` (issue 16) compares our web processes with gunicorn's arbiter running the
maintained uvicorn worker class (`uvicorn_worker.UvicornWorker`, or `--gunicorn-worker`) on
the same store, as many workers as `--web-workers`: no sandbox. Both serve at once and each
workload alternates between them `--rounds` times, so both meet the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import LoadResult, run_load  # noqa: E402  (bench/, beside this file)
from our_postgres import encounter_ids, postgres_copy, postgres_url  # noqa: E402
from procinfo import PostgresCpu, cpu_seconds, sandbox_cpu_seconds  # noqa: E402

from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.schema import resources  # noqa: E402
from mappings import map_submission  # noqa: E402
from mappings.common.bundle import transaction_bundle  # noqa: E402
from mappings.common.lookup import obj, objs, str_field  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import EncounterSubmission  # noqa: E402
from tests.integration.support import encounters, sandbox_count  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
API_KEY = "bench-" + uuid.uuid4().hex
SAMPLE = 2000  # ids per workload, cycled by the load generator
NO_EHR = {"ADAPTER_EHR_BASE_URL": ""}  # our services push nothing: readiness asks no EHR


@dataclass(frozen=True)
class Targets:
    """What one server is asked, by its own ids."""

    reads: list[str]
    searches: list[str]
    everything: list[str]


# ---- loading ---------------------------------------------------------------------------


def store_url(db: Path | str) -> str:
    """The database URL of a store: a SQLite file's, or `db` itself when it is a URL."""
    return db if isinstance(db, str) else f"sqlite:///{db}"


def load_ours(db: Path | str, subs: list[EncounterSubmission], ctx: MappingContext) -> float:
    """Seconds to ingest `subs` into the store `db` (a SQLite file, or a database URL)."""
    engine = create_store_engine(store_url(db))
    upgrade(engine)
    start = time.perf_counter()
    for sub in subs:
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


def reuse_store(saved: Path, db: Path, encounters: int) -> None:
    """Copy `saved` (made by an earlier run) to `db`, once sure it holds `encounters`."""
    engine = create_store_engine(f"sqlite:///{saved}")
    with engine.connect() as conn:
        held = conn.execute(
            select(func.count()).where(resources.c.resource_type == "Encounter")
        ).scalar_one()
    engine.dispose()
    if held != encounters:
        raise SystemExit(f"{saved} holds {held} encounters, not {encounters}")
    shutil.copy(saved, db)


def load_sandbox(base: str, subs: list[EncounterSubmission], ctx: MappingContext) -> float:
    sessions: dict[int, requests.Session] = {}

    def post(body: bytes) -> None:
        import threading

        http = sessions.setdefault(threading.get_ident(), requests.Session())
        http.post(base, data=body, headers=FHIR_JSON, timeout=300).raise_for_status()

    def bundle(sub: EncounterSubmission) -> bytes:
        return orjson.dumps(transaction_bundle(map_submission(sub, ctx), ctx))

    start = time.perf_counter()
    post(bundle(subs[0]))  # alone: it creates the clinic every other Bundle refers to
    with ThreadPoolExecutor(4) as pool:
        # Built a batch at a time: 50,000 Bundles at once would hold gigabytes.
        for first in range(1, len(subs), LOAD_BATCH):
            for _ in pool.map(post, [bundle(s) for s in subs[first : first + LOAD_BATCH]]):
                pass
    return time.perf_counter() - start


LOAD_BATCH = 200


def settle(limit_seconds: float = 180.0) -> None:
    """Wait until the sandbox is idle after loading (HAPI indexes and collects garbage for
    a while), so that its background work does not take CPU from whoever runs next."""
    start = time.monotonic()
    while (before := sandbox_cpu_seconds()) is not None:
        time.sleep(2)
        after = sandbox_cpu_seconds() or before
        if (after - before) / 2 < 0.1 or time.monotonic() - start > limit_seconds:
            print(f"sandbox idle after {time.monotonic() - start:.0f} s", flush=True)
            return


# ---- what to ask -----------------------------------------------------------------------


def first_observation_code(subs: list[EncounterSubmission], ctx: MappingContext) -> str:
    """`system|code` of the first Observation an encounter maps to (in the typical example
    the PHQ-9 total score, LOINC 44261-6: one match per patient)."""
    for res in map_submission(subs[0], ctx):
        if res["resourceType"] == "Observation":
            coding = objs(obj(res.get("code")).get("coding"))[0]
            return f"{str_field(coding, 'system')}|{str_field(coding, 'code')}"
    raise SystemExit("the example maps to no Observation")


def our_targets(db: Path | str, code: str, rng: random.Random) -> Targets:
    engine = create_store_engine(store_url(db))
    with engine.connect() as conn:
        ids = conn.execute(
            select(resources.c.resource_type, resources.c.logical_id).where(
                resources.c.resource_type.in_(("Observation", "Patient"))
            )
        ).all()
    engine.dispose()
    observations = [i for t, i in ids if t == "Observation"]
    patients = [i for t, i in ids if t == "Patient"]
    return _targets(observations, patients, code, rng)


def sandbox_targets(base: str, ctx: MappingContext, code: str, rng: random.Random) -> Targets:
    """The sandbox's own ids for our resources, found by our identifier systems."""
    observations = _ids(base, "Observation", f"{ctx.namespace}/sid/vitals|")
    patients = _ids(base, "Patient", f"{ctx.namespace}/sid/mrn|")
    return _targets(observations, patients, code, rng)


def _ids(base: str, resource_type: str, identifier: str) -> list[str]:
    found: list[str] = []
    url: str | None = f"{base}/{resource_type}"
    params: dict[str, str] | None = {
        "identifier": identifier,
        "_elements": "id",
        "_count": "1000",
    }
    while url and len(found) < SAMPLE * 5:
        page = requests.get(url, params=params, headers=FHIR_JSON, timeout=300).json()
        found += [str(e["resource"]["id"]) for e in page.get("entry", [])]
        url = next(
            (link["url"] for link in page.get("link", []) if link["relation"] == "next"), None
        )
        params = None
    if not found:
        raise SystemExit(f"the sandbox holds none of our {resource_type} resources ({identifier})")
    return found


def next_link(page: dict[str, object]) -> str | None:
    links = page.get("link")
    for link in links if isinstance(links, list) else []:
        if link.get("relation") == "next":
            return str(link["url"])
    return None


def _targets(
    observations: list[str], patients: list[str], code: str, rng: random.Random
) -> Targets:
    reads = [f"Observation/{i}" for i in rng.sample(observations, min(SAMPLE, len(observations)))]
    chosen = rng.sample(patients, min(SAMPLE, len(patients)))
    searches = [f"Observation?patient=Patient/{p}&code={code}&_count=50" for p in chosen]
    everything = [f"Patient/{p}/$everything" for p in chosen]
    return Targets(reads, searches, everything)


# ---- our service -----------------------------------------------------------------------


def service_env(
    db: Path | str, folder: Path, web_workers: int, settings: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a service on the store (a SQLite file, or a database URL): the
    bench's ADAPTER_* settings (and `settings` beside them), none inherited from the
    caller's; no EHR (the push worker is off: nothing to push to)."""
    keys = folder / "keys.json"
    keys.write_text(json.dumps([{"key": API_KEY, "tenant": "default", "scopes": ["system/*.rs"]}]))
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
        | {
            "ADAPTER_DATABASE_URL": store_url(db),
            "ADAPTER_API_KEYS_FILE": str(keys),
            "ADAPTER_RUN_WORKER": "false",
            "ADAPTER_PULL_INTERVAL_SECONDS": "0",
            "ADAPTER_LOG_LEVEL": "WARNING",
            "ADAPTER_WEB_WORKERS": str(web_workers),
        }
        | NO_EHR
        | (settings or {})
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    command: list[str], env: dict[str, str], port: int, name: str
) -> Iterator[tuple[str, list[int]]]:
    """Runs `command` (a server on `port`) until the block ends; yields its /fhir base URL
    once `/ready` answers, and the pids of its processes."""
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/ready", timeout=10).ok:
                    break
            except requests.RequestException:
                pass  # not listening yet, or too busy starting to answer: ask again
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{name} did not become ready")
            time.sleep(0.2)
        yield f"{url}/fhir", [process.pid, *children(process.pid)]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@contextmanager
def our_service(
    db: Path | str, folder: Path, web_workers: int, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, list[int]]]:
    """`adapter serve` on the store (a SQLite file, or a database URL), with `settings`
    (ADAPTER_* variables) beside the bench's own; yields its base URL and the pids of its
    processes."""
    env = service_env(db, folder, web_workers, settings)
    port = free_port()
    command = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)]
    with serving(command, env, port, "our service") as served:
        yield served


@contextmanager
def gunicorn_service(
    db: Path, folder: Path, web_workers: int, worker_class: str
) -> Iterator[tuple[str, list[int]]]:
    """gunicorn's arbiter with `web_workers` workers of `worker_class` serving the same app
    as our web processes (`adapter.api.app:web_process_app`), on the same store, with what
    `adapter serve` gives its web processes: one paging secret, metrics across processes."""
    metrics = folder / "gunicorn-metrics"
    metrics.mkdir()
    env = service_env(db, folder, web_workers) | {
        "ADAPTER_PAGING_SECRET": uuid.uuid4().hex * 2,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
    }
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "adapter.api.app:web_process_app()",
        "--worker-class", worker_class, "--workers", str(web_workers),
        "--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
    ]  # fmt: skip
    with serving(command, env, port, "gunicorn") as served:
        yield served


def children(pid: int) -> list[int]:
    """Every descendant process of `pid` (uvicorn's web processes, their helpers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def rss_mib(pids: list[int]) -> float:
    """The summed resident memory of `pids`, in MiB."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def page_through(base: str, pids: list[int], headers: dict[str, str]) -> None:
    """Follow `next` links over every Observation, sampling our service's memory."""
    samples: list[float] = [rss_mib(pids)]
    url: str | None = f"{base}/Observation?_count=500"
    pages = entries = 0
    with requests.Session() as http:
        while url:
            reply = http.get(url, headers=headers, timeout=300)
            reply.raise_for_status()
            page = reply.json()
            pages += 1
            entries += len(page.get("entry", []))
            samples.append(rss_mib(pids))
            url = next_link(page)
    quarter = max(1, len(samples) // 4)
    print(
        f"paging: {entries} Observations in {pages} pages; our service's RSS MiB: "
        f"start {samples[0]:.0f}, after first quarter {samples[quarter]:.0f}, "
        f"max {max(samples):.0f}, end {samples[-1]:.0f}"
    )


# ---- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not counted")
    parser.add_argument(
        "--web-workers", type=int, default=2, help="ADAPTER_WEB_WORKERS of our service"
    )
    parser.add_argument(
        "--workloads", default="read,search,everything,paging", help="comma-separated subset"
    )
    parser.add_argument(
        "--peer",
        choices=("sandbox", "gunicorn"),
        default="sandbox",
        help="what our service is compared with: the HAPI sandbox, or the same app under "
        "gunicorn (issue 16)",
    )
    parser.add_argument(
        "--gunicorn-worker",
        default="uvicorn_worker.UvicornWorker",
        help="gunicorn's worker class with --peer gunicorn",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --peer gunicorn: alternations per workload"
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="a store file of ours: used (copied) when it holds --encounters encounters, "
        "else loaded and saved there for the next run (loading 10,000 takes about 15 minutes)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database for a second service of ours: our store copied there "
        "(empty), or kept (an earlier run's copy of the same --store); each workload then "
        "runs against ours on PostgreSQL, ours on SQLite and the sandbox",
    )
    parser.add_argument(
        "--sandbox-namespace",
        help="the mapping namespace of an earlier run whose encounters the sandbox holds: "
        "they are not loaded again (that run printed it; same --encounters)",
    )
    parser.add_argument(
        "--postgres-only",
        action="store_true",
        help="with --database-url: our store is ingested straight into that database "
        "(kept when it holds the encounters), no SQLite store, and the rows are ours-PG "
        "and the sandbox (for sizes where a SQLite copy does not fit on the disk too)",
    )
    parser.add_argument(
        "--load-only",
        choices=("all", "sandbox", "ours"),
        help="fill the stores (all), or only the sandbox or only ours (two runs at once, "
        "with one --sandbox-namespace), and stop: measure later, on a quiet machine, with "
        "--sandbox-namespace and the same --store",
    )
    args = parser.parse_args()
    if args.postgres_only and not args.database_url:
        parser.error("--postgres-only needs --database-url (the PostgreSQL database to fill)")
    if args.peer == "gunicorn":
        compare_with_gunicorn(args)
        return
    sandbox = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    requests.get(f"{sandbox}/metadata", timeout=30).raise_for_status()
    database_url = postgres_url(args.database_url) if args.database_url else None
    ctx, subs, code, rng = bench_data(args)
    if not args.sandbox_namespace:
        print(
            f"mapping namespace {ctx.namespace}: a rerun with --sandbox-namespace "
            f"{ctx.namespace} --encounters {len(subs)} finds the sandbox's data there",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        # The sandbox first: it may refuse at once.
        hapi_load = (
            "not loaded" if args.load_only == "ours" else sandbox_store(args, sandbox, subs, ctx)
        )
        store: Path | str = database_url if args.postgres_only and database_url else db
        ours_load = (
            "not loaded" if args.load_only == "sandbox" else our_store(args, store, subs, ctx)
        )
        resources_loaded = sum(len(map_submission(s, ctx)) for s in subs[:10]) * len(subs) // 10
        print(
            f"loaded {len(subs)} encounters (~{resources_loaded} resources): "
            f"our store {ours_load}, sandbox {hapi_load}"
        )
        if database_url and args.load_only != "sandbox" and not args.postgres_only:
            print(f"our store on PostgreSQL: {postgres_copy(db, database_url)}", flush=True)
        if args.load_only:
            return
        settle()
        ours_t = our_targets(store, code, rng)
        hapi_t = sandbox_targets(sandbox, ctx, code, rng)
        plain = {"Accept": "application/fhir+json"}
        with ExitStack() as services:
            ours = [
                (name, *services.enter_context(our_service(served, Path(folder), args.web_workers)))
                for name, served in our_stores(database_url, db, args.postgres_only)
            ]
            print(
                f"{args.connections} connections, {args.seconds:g} s per run after a "
                f"{args.warmup:g} s warm-up; our service: {args.web_workers} web "
                f"process(es), RSS at rest "
                + ", ".join(f"{name} {rss_mib(pids):.0f} MiB" for name, _, pids in ours)
                + " (all its processes)"
            )
            for name, mine, theirs in workloads(args, ours_t, hapi_t):
                results, spent = [], []
                for label, base, pids in ours:
                    with cpu_split(processes_cpu(pids)) as cpu:
                        results.append((label, load_once(args, base, mine, AUTH)))
                    spent.append((label, cpu))
                with cpu_split(sandbox_cpu_seconds) as cpu:
                    results.append(("sandbox", load_once(args, sandbox, theirs, plain)))
                spent.append(("sandbox", cpu))
                report(name, results)
                report_cpu(results, spent)
                print(f"{'':8}load average after: {load_average()}", flush=True)
            if "paging" in args.workloads.split(","):
                for label, base, pids in ours:
                    print(f"{label}:", end=" ")
                    page_through(base, pids, AUTH)


def our_stores(
    database_url: str | None, db: Path, postgres_only: bool
) -> list[tuple[str, Path | str]]:
    """(label, store) of each of our services: the SQLite store, and with --database-url
    its copy on PostgreSQL first (with --postgres-only, that alone)."""
    if not database_url:
        return [("ours", db)]
    if postgres_only:
        return [("ours-PG", database_url)]
    return [("ours-PG", database_url), ("ours-SQLite", db)]


def sandbox_store(
    args: argparse.Namespace, base: str, subs: list[EncounterSubmission], ctx: MappingContext
) -> str:
    """Load the encounters into the sandbox; with --sandbox-namespace, find them there
    instead (an earlier run's), or load them under that namespace when it holds none of
    them (a fresh sandbox beside a kept --store), refusing any other number."""
    if not args.sandbox_namespace:
        return f"{load_sandbox(base, subs, ctx):.1f} s"
    encounter = next(r for r in map_submission(subs[0], ctx) if r["resourceType"] == "Encounter")
    system = str_field(objs(encounter.get("identifier"))[0], "system")
    held = sandbox_count(base, "Encounter", str(system))
    if held == 0:
        return f"{load_sandbox(base, subs, ctx):.1f} s (namespace {ctx.namespace})"
    if held != len(subs):
        raise SystemExit(
            f"the sandbox holds {held} Encounters of namespace {ctx.namespace}, not "
            f"{len(subs)}: rerun without --sandbox-namespace to load them"
        )
    return f"found there ({held} Encounters of namespace {ctx.namespace}), not loaded again"


def bench_data(
    args: argparse.Namespace,
) -> tuple[MappingContext, list[EncounterSubmission], str, random.Random]:
    """The run's mapping context (a new namespace, or --sandbox-namespace's), its
    `--encounters` encounters, the searched code and the
    seeded random source that picks what is asked."""
    namespace = args.sandbox_namespace or f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example"
    ctx = MappingContext(namespace=namespace)
    subs = list(encounters(args.encounters))
    return ctx, subs, first_observation_code(subs, ctx), random.Random(20261125)


AUTH = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/fhir+json"}
WORKLOADS = (
    ("read", "read by id", "reads"),
    ("search", "search patient+code, first 50", "searches"),
    ("everything", "$everything for one patient", "everything"),
)


def workloads(
    args: argparse.Namespace, ours: Targets, theirs: Targets
) -> Iterator[tuple[str, list[str], list[str]]]:
    """(name, our paths, the peer's paths) of each workload `--workloads` chose."""
    chosen = set(args.workloads.split(","))
    for key, name, field in WORKLOADS:
        if key in chosen:
            yield name, getattr(ours, field), getattr(theirs, field)


def load_once(
    args: argparse.Namespace, base: str, paths: list[str], headers: dict[str, str]
) -> LoadResult:
    return run_load(
        base,
        paths,
        headers,
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
    )


def our_store(
    args: argparse.Namespace, db: Path | str, subs: list[EncounterSubmission], ctx: MappingContext
) -> str:
    """Fill `db`: copied from `--store` when it holds the encounters, else loaded (and
    kept in `--store`); says which, or how long loading took. A PostgreSQL `db`
    (--postgres-only) is loaded when empty and kept when it holds the encounters."""
    if isinstance(db, str):
        held = len(encounter_ids(db))
        if held == len(subs):
            return f"kept ({held} Encounters there from an earlier run)"
        if held:
            raise SystemExit(f"--database-url holds {held} Encounters, not {len(subs)}")
        return f"{load_ours(db, subs, ctx):.1f} s (into PostgreSQL)"
    if args.store and args.store.exists():
        reuse_store(args.store, db, len(subs))
        return "copied"
    seconds = load_ours(db, subs, ctx)
    if args.store:
        shutil.copy(db, args.store)
    return f"{seconds:.1f} s"


def compare_with_gunicorn(args: argparse.Namespace) -> None:
    """Our web processes and gunicorn's, both serving one store, each workload alternating
    between them `args.rounds` times."""
    ctx, subs, code, rng = bench_data(args)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        print(f"our store of {len(subs)} encounters: {our_store(args, db, subs, ctx)}")
        targets = our_targets(db, code, rng)
        workers = args.web_workers
        with (
            our_service(db, Path(folder), workers) as (ours, ours_pids),
            gunicorn_service(db, Path(folder), workers, args.gunicorn_worker) as (peer, peer_pids),
        ):
            print(
                f"{args.connections} connections, {args.seconds:g} s per run after a "
                f"{args.warmup:g} s warm-up, {args.rounds} round(s); {workers} web processes "
                f"each: ours RSS at rest {rss_mib(ours_pids):.0f} MiB, gunicorn "
                f"({args.gunicorn_worker}) {rss_mib(peer_pids):.0f} MiB; "
                f"load average {load_average()}",
                flush=True,
            )
            for name, asked, _ in workloads(args, targets, targets):
                mine: list[LoadResult] = []
                theirs: list[LoadResult] = []
                for _ in range(args.rounds):
                    mine.append(load_once(args, ours, asked, AUTH))
                    theirs.append(load_once(args, peer, asked, AUTH))
                report_rounds(name, mine, theirs)
                print(f"{'':8}load average after: {load_average()}", flush=True)


def report_rounds(name: str, ours: list[LoadResult], gunicorn: list[LoadResult]) -> None:
    for index, (mine, theirs) in enumerate(zip(ours, gunicorn, strict=True), start=1):
        print(mine.line(f"ours     {name} #{index}"))
        print(theirs.line(f"gunicorn {name} #{index}"))
    if any(r.failures for r in [*ours, *gunicorn]):
        print(f"{'':8}{name}: no ratio: failed answers are not throughput", flush=True)
        return
    mine, theirs = pooled(ours), pooled(gunicorn)
    print(mine.line(f"ours     {name}, all rounds"))
    print(theirs.line(f"gunicorn {name}, all rounds"))
    print(
        f"{'':8}{name}: ours / gunicorn: requests/s {mine.rate / theirs.rate:.3f}x, "
        f"p99 {mine.percentile(99) / theirs.percentile(99):.3f}x",
        flush=True,
    )


def pooled(results: list[LoadResult]) -> LoadResult:
    """The rounds of one server as one run: their requests, seconds and latencies summed."""
    return LoadResult(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        failures=sum(r.failures for r in results),
        latencies=tuple(sorted(t for r in results for t in r.latencies)),
    )


def load_average() -> str:
    """The machine's 1-minute load average: other work running would skew the figures."""
    return Path("/proc/loadavg").read_text().split()[0]


@dataclass
class CpuSpent:
    """CPU seconds during one load run: the server's processes, the PostgreSQL servers of
    the machine (its store, when on PostgreSQL), and this process (the load generator)."""

    server: float = 0.0
    database: float = 0.0
    load_generator: float = 0.0


@contextmanager
def cpu_split(server_cpu: Callable[[], float | None]) -> Iterator[CpuSpent]:
    spent = CpuSpent()
    database = PostgresCpu()
    database.start()
    server_before, mine_before = server_cpu() or 0.0, time.process_time()
    yield spent
    spent.server = (server_cpu() or 0.0) - server_before
    spent.database = database.seconds()
    spent.load_generator = time.process_time() - mine_before


def processes_cpu(pids: list[int]) -> Callable[[], float]:
    """A reader of the CPU time used so far by those of `pids` still running."""
    return lambda: cpu_seconds(pids)


def report_cpu(results: list[tuple[str, LoadResult]], spent: list[tuple[str, CpuSpent]]) -> None:
    """Where each server's CPU went, per request answered: its own processes, PostgreSQL,
    and the load generator beside them (all on the same cores)."""
    for (label, result), (_, cpu) in zip(results, spent, strict=True):
        each = 1000 / max(result.requests, 1)
        print(
            f"{'':8}{label:11} CPU per request: server {cpu.server * each:.2f} ms, "
            f"PostgreSQL {cpu.database * each:.2f} ms, load generator "
            f"{cpu.load_generator * each:.2f} ms",
            flush=True,
        )


def report(name: str, results: list[tuple[str, LoadResult]]) -> None:
    """Each server's line, then each one's rate over every later one's (`ours / sandbox`;
    with --database-url `ours-PG / ours-SQLite`, `ours-PG / sandbox`, `ours-SQLite /
    sandbox`)."""
    for label, result in results:
        print(result.line(f"{label:11} {name}"))
    if any(result.failures for _, result in results):
        print(f"{'':8}{name}: no ratio: failed answers are not throughput", flush=True)
        return
    ratios = [
        f"{mine} / {theirs} {first.rate / second.rate:.2f}x"
        for index, (mine, first) in enumerate(results)
        for theirs, second in results[index + 1 :]
    ]
    print(f"{'':8}{name}: {', '.join(ratios)}", flush=True)


if __name__ == "__main__":
    main()
