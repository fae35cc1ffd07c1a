"""Benchmark: how long a writer waits for a SQLite store's write lock while other threads
of its process write, with the writers' queue (adapter.store.writer_queue) and without it,
in the same run.

Run alone: `.venv/bin/python bench/sqlite_writers.py [--pause-ms 2] [--probes 200]`.

Two threads write in a loop through `write_transaction` (a 20-row insert each, then
`--pause-ms` of other work); a third, the probe, writes 5 rows every 5 ms and times how
long its transaction waited for the lock. Printed for each way: the probe's wait p50, p90,
p99 and maximum, its tries that failed (the 5 s busy timeout), the loop threads'
transactions, and the ratio of the p99s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.store import engine as store_engine  # noqa: E402


def run(queued: bool, pause: float, probes: int) -> tuple[list[float], int, int]:
    with tempfile.TemporaryDirectory() as folder:
        engine = store_engine.create_store_engine(f"sqlite:///{Path(folder) / 'w.db'}")
        with store_engine.write_transaction(engine) as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        if not queued:
            del store_engine._WRITERS[engine]  # noqa: SLF001 - the baseline: SQLite's own waiting
        stop = threading.Event()
        written, failed, waits = [0], [0], []

        def transaction(rows: int) -> float:
            started = time.perf_counter()
            with store_engine.write_transaction(engine) as conn:
                conn.execute(text("SELECT 1"))  # the BEGIN IMMEDIATE, and so the wait
                waited = time.perf_counter() - started
                for n in range(rows):
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": n})
            return waited

        def loop() -> None:
            while not stop.is_set():
                try:
                    transaction(20)
                    written[0] += 1
                except store_engine.StoreError:
                    failed[0] += 1
                time.sleep(pause)

        threads = [threading.Thread(target=loop) for _ in range(2)]
        for thread in threads:
            thread.start()
        for _ in range(probes):
            try:
                waits.append(transaction(5))
            except store_engine.StoreError:
                failed[0] += 1
                waits.append(5.0)
            time.sleep(0.005)
        stop.set()
        for thread in threads:
            thread.join()
        engine.dispose()
        return sorted(waits), failed[0], written[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause-ms", type=float, default=2.0)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    p99 = {}
    for queued in (False, True):
        waits, failed, written = run(queued, args.pause_ms / 1000, args.probes)
        cut = [waits[int(len(waits) * q)] * 1000 for q in (0.5, 0.9, 0.99)]
        p99[queued] = cut[2]
        print(
            f"{'with the queue' if queued else 'SQLite alone  '}: probe wait p50 {cut[0]:.2f} "
            f"ms, p90 {cut[1]:.2f} ms, p99 {cut[2]:.2f} ms, max {waits[-1] * 1000:.1f} ms; "
            f"{failed} failed; {written} loop transactions",
            flush=True,
        )
    print(f"p99 wait, SQLite alone / with the queue: {p99[False] / p99[True]:.1f}x")


if __name__ == "__main__":
    main()
