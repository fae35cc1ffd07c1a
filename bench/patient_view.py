"""Benchmark: what assembling `GET /clinic/patients/{mrn}` costs, as a patient's history grows.

Run alone: `.venv/bin/python bench/patient_view.py [--reads 300] [--histories 1,10,100]`.

One SQLite store (a temp file) holds, per history size N, a patient of its own with N
encounters (the typical example, ids made unique: an infusion, four vital-sign readings, an
intake screening and a medication review each, reviewed a day apart) plus what a pull
imports from the EHR: three MedicationStatements and two AllergyIntolerances. Timed in the
same process, interleaved: `patient_view` (the store query and the assembly, no HTTP) and,
as the baseline, reading the patient's current Patient row alone (`current_patient`), the
floor of any read of a patient. Printed per N: median and p95 of each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.patient_rows import current_patient  # noqa: E402
from adapter.sync.patient_view import patient_view  # noqa: E402
from mappings.common import identity  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from tests.unit.adapter.api.pulled import imported  # noqa: E402

EXAMPLE = ROOT / "examples" / "typical-ketamine-infusion.json"
CTX = MappingContext(tenant="bench")
FIRST_REVIEW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _encounter(mrn: str, number: int) -> bytes:
    text = EXAMPLE.read_text()
    for old in ("ENC-2026-1120-001", "INF-55031", "MR-3301", "SCR-88120"):
        text = text.replace(old, f"{old}-{mrn}-{number}")
    document: dict[str, Any] = json.loads(text.replace('"VS-', f'"VS-{mrn}-{number}-'))
    document["patient"]["mrn"] = mrn
    reviewed = FIRST_REVIEW + timedelta(days=number)
    document["medication_review"]["reviewed_at"] = reviewed.isoformat()
    return json.dumps(document).encode()


def _imports(engine: Engine, mrn: str) -> None:
    subject = {"reference": identity.patient(CTX, mrn).reference}
    for n, drug in enumerate(("quetiapine", "lithium", "bupropion")):
        statement = {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": drug},
            "subject": subject,
            "dosage": [{"text": "1 tab daily"}],
        }
        imported(engine, CTX.tenant, mrn, statement, f"ms-{mrn}-{n}", FIRST_REVIEW)
    for n, substance in enumerate(("latex", "codeine")):
        allergy = {"resourceType": "AllergyIntolerance", "code": {"text": substance}}
        imported(
            engine, CTX.tenant, mrn, allergy | {"patient": subject}, f"ai-{mrn}-{n}", FIRST_REVIEW
        )


def _load(engine: Engine, histories: list[int]) -> None:
    for size in histories:
        mrn = f"MRN-BENCH-{size}"
        for number in range(size):
            ingest_encounter(engine, _encounter(mrn, number), CTX)
        _imports(engine, mrn)


def _timed(read: Callable[[], object], reads: int) -> list[float]:
    took = []
    for _ in range(reads):
        start = time.perf_counter()
        read()
        took.append((time.perf_counter() - start) * 1000)
    return took


def _measure(engine: Engine, size: int, reads: int) -> tuple[list[float], list[float]]:
    mrn = f"MRN-BENCH-{size}"
    patient = identity.patient(CTX, mrn)
    views: list[float] = []
    floors: list[float] = []
    with engine.connect() as conn:
        found = patient_view(conn, CTX, mrn)
        medications = found["medications"] if found is not None else None
        if not isinstance(medications, list) or len(medications) != 2 + 3:
            raise SystemExit("the view does not hold the latest review's 2 and the 3 imported")
        for _ in range(10):  # interleaved, so both meet the machine in the same state
            views += _timed(lambda: patient_view(conn, CTX, mrn), reads // 10)
            floors += _timed(lambda: current_patient(conn, CTX.tenant, patient), reads // 10)
    return views, floors


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--histories", default="1,10,100")
    args = parser.parse_args()
    histories = [int(n) for n in args.histories.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        engine = create_store_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade(engine)
        started = time.perf_counter()
        _load(engine, histories)
        print(f"loaded {sum(histories)} encounters in {time.perf_counter() - started:.1f} s")
        print("encounters  view median  view p95  Patient row median  ratio (median)")
        for size in histories:
            views, floors = _measure(engine, size, args.reads)
            view, floor = statistics.median(views), statistics.median(floors)
            print(
                f"{size:>10}  {view:>8.2f} ms  {_p95(views):>5.2f} ms"
                f"  {floor:>15.3f} ms  {view / floor:>12.1f}x"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
