"""Benchmark: what the generated narratives cost the mapping, in one process.

Run alone: `.venv/bin/python bench/narrative_cost.py [--rounds 15] [--seconds 1]`.

The end-to-end pipeline of `bench/mapping_throughput.py` ("ours": contract JSON bytes ->
checked model -> FHIR dicts -> transaction Bundle -> orjson bytes), for the typical shared
example and the 30-reading vitals encounter, timed in rounds that alternate between the
mappers as they are and the same mappers with `with_narrative(s)` swapped for the identity
(everything else, profiles and performers included, unchanged). Time is process CPU time
(`time.process_time()`), so other load on a shared machine counts only through caches; the
figure per side is its best round. Prints resources per second of each and the cost of the
narratives in per cent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from mapping_throughput import ours, thirty_vitals, typical  # noqa: E402

from mappings.jsontypes import Resource  # noqa: E402


def _unchanged(res: Resource) -> Resource:
    return res


def _unchanged_all(resources: list[Resource]) -> list[Resource]:
    return list(resources)


@contextmanager
def without_narratives() -> Iterator[None]:
    """Every mapper module's `with_narrative(s)` as the identity, restored after."""
    swapped = []
    for module in [m for name, m in sys.modules.items() if name.startswith("mappings.")]:
        for name, stand_in in (("with_narrative", _unchanged), ("with_narratives", _unchanged_all)):
            if name in vars(module) and module.__name__ != "mappings.common.narrative":
                swapped.append((module, name, getattr(module, name)))
                setattr(module, name, stand_in)
    try:
        yield
    finally:
        for module, name, original in swapped:
            setattr(module, name, original)


def cpu_rate(fn: Callable[[bytes], int], raw: bytes, seconds: float) -> float:
    count, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        count += fn(raw)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds per side")
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per round")
    args = parser.parse_args()
    for label, sub in (("typical example", typical()), ("30-reading vitals", thirty_vitals())):
        raw = sub.model_dump_json(exclude_none=True).encode()
        ours(raw)  # warm: tables loaded, caches filled
        with_text, without = 0.0, 0.0
        for _ in range(args.rounds):
            with_text = max(with_text, cpu_rate(ours, raw, args.seconds))
            with without_narratives():
                without = max(without, cpu_rate(ours, raw, args.seconds))
        cost = 100 * (without / with_text - 1)
        print(
            f"{label:18} with narratives {with_text:8.0f} res/s  without {without:8.0f} res/s"
            f"  narratives cost {cost:4.1f} % more time"
        )


if __name__ == "__main__":
    main()
