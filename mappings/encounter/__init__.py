"""A whole encounter document: its records, its Encounter, and back.

    submission.py  the encounter submission to FHIR and back (one mapper per record kind)
    visit.py       the Encounter and its indication Condition
    coverage.py    where each contract field went in FHIR, found by experiment

Outside this package, use the names below, not its modules.
"""

from __future__ import annotations

from mappings.encounter.coverage import field_coverage, round_trip_differences
from mappings.encounter.submission import map_submission, unmap_submission

__all__ = ["field_coverage", "map_submission", "round_trip_differences", "unmap_submission"]
