"""Benchmark: map + serialize clinic encounters, ours against a model-based pipeline.

Run alone: `.venv/bin/python bench/mapping_throughput.py [--seconds 5]`.

Prints resources per second, end to end on one core, for
  ours  - contract JSON bytes -> checked contract model -> FHIR dicts (mappings)
          -> transaction Bundle -> orjson bytes
  naive - the same parse and mapping, but each resource built as a fhir.resources
          R4B model and dumped with the model's own JSON serializer (what a
          straightforward implementation does)
and the ratio between them, for the typical shared example and for a
30-reading vitals encounter. Both paths run in this process, one after the
other, on the same inputs; the output of ours is checked to equal the models'.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappings import map_submission  # noqa: E402
from mappings.common.bundle import transaction_bundle  # noqa: E402
from mappings.common.serialize import dumps  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import (  # noqa: E402
    EncounterSubmission,
    Measurement,
    VitalsObservation,
    parse_submission,
)

EXAMPLE = ROOT / "examples" / "typical-ketamine-infusion.json"
CTX = MappingContext()


def typical() -> EncounterSubmission:
    return EncounterSubmission.model_validate_json(EXAMPLE.read_text())


def thirty_vitals() -> EncounterSubmission:
    base = typical()
    assert base.infusion is not None
    assert base.infusion.start is not None
    readings = []
    for i in range(30):
        readings.append(
            VitalsObservation(
                vitals_id=f"VS-B{i}",
                taken_at=base.infusion.start + timedelta(minutes=2 * i),
                phase="pre_infusion" if i == 0 else "intra_infusion",
                systolic=Measurement(value=120 + i, unit="mmHg"),
                diastolic=Measurement(value=80 + i % 10, unit="mmHg"),
                heart_rate=Measurement(value=70 + i, unit="/min"),
                spo2=Measurement(value=97, unit="%"),
                respiratory_rate=Measurement(value=14, unit="/min"),
            )
        )
    return base.model_copy(update={"vitals": readings})


def ours(raw: bytes) -> int:
    """End to end: contract JSON bytes -> checked model -> resources -> Bundle bytes."""
    resources = map_submission(parse_submission(raw), CTX)
    dumps(transaction_bundle(resources, CTX))
    return len(resources)


def naive(raw: bytes) -> int:
    """The same, with each resource built as its R4B model and dumped by the model."""
    resources = map_submission(parse_submission(raw), CTX)
    for res in resources:
        get_fhir_model_class(str(res["resourceType"])).model_validate(res).model_dump_json(
            exclude_none=True
        )
    return len(resources)


def rate(fn: Callable[[bytes], int], raw: bytes, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += fn(raw)
    return count / elapsed


def check_equal(sub: EncounterSubmission) -> None:
    """Our bytes must say exactly what the validated models say."""
    for res in map_submission(sub, CTX):
        model = get_fhir_model_class(str(res["resourceType"])).model_validate(res)
        assert json.loads(dumps(res)) == json.loads(model.model_dump_json(exclude_none=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args()
    for label, sub in (("typical example", typical()), ("30-reading vitals", thirty_vitals())):
        check_equal(sub)
        raw = sub.model_dump_json(exclude_none=True).encode()
        n = ours(raw)
        fast = rate(ours, raw, args.seconds)
        slow = rate(naive, raw, args.seconds)
        print(
            f"{label:18} {n:3d} resources/encounter  ours {fast:9.0f} res/s  "
            f"naive {slow:8.0f} res/s  ratio {fast / slow:5.1f}x"
        )


if __name__ == "__main__":
    main()
