"""The vitals record kind: reading sets as vital-signs Observations.

    readings.py        reading sets to FHIR (`map_vitals`)
    reverse.py         Observations back to reading sets (`unmap_vitals`)
    measures.py        each measurement named once: field, identity part, code, units
    interpretation.py  N/H/L/HH/LL from the clinic's protocol (limits per phase)
    alerts.py          a Flag per critical (HH/LL) measurement

Outside this package, use the names below (or `mappings.kinds`), not its modules.
"""

from __future__ import annotations

from mappings.vitals.readings import map_vitals
from mappings.vitals.reverse import unmap_vitals

__all__ = ["map_vitals", "unmap_vitals"]
