"""Large encounter documents: the shared example with thousands of vital-sign readings.

A clinic that records vitals every few seconds from a monitor sends documents of thousands
of readings (a 780 KB document of 3,000 is what issue 15 met). `with_readings(n)` makes one
from the typical example: its first intra-infusion reading repeated `n` times (blood
pressure and heart rate: a panel and two Observations each, so about 3 resources a
reading), one a second from the infusion's start, each with its own id and values
that vary within normal limits. `bench/large_document.py` and the tests share it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "typical-ketamine-infusion.json"
INTERVAL = timedelta(seconds=1)


def with_readings(count: int, encounter_id: str | None = None) -> dict[str, Any]:
    """The typical example with `count` vital-sign readings (and `encounter_id`, if given)."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    template = next(v for v in document["vitals"] if v["phase"] == "intra_infusion")
    start = datetime.fromisoformat(document["infusion"]["start"])
    document["vitals"] = [_reading(template, start, i) for i in range(count)]
    if encounter_id is not None:
        document["encounter_id"] = encounter_id
    return document


def _reading(template: dict[str, Any], start: datetime, index: int) -> dict[str, Any]:
    return {
        "vitals_id": f"VS-L{index}",
        "taken_at": (start + index * INTERVAL).isoformat(),
        "phase": template["phase"],
        "systolic": {"value": 118 + index % 17, "unit": "mmHg"},
        "diastolic": {"value": 76 + index % 9, "unit": "mmHg"},
        "heart_rate": {"value": 70 + index % 13, "unit": "/min"},
    }


def encoded(document: dict[str, Any]) -> bytes:
    """The document as a clinic sends it: compact JSON."""
    return json.dumps(document, separators=(",", ":")).encode()
