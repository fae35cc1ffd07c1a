"""The infusion record kind: the session's Procedure, order, administrations, adverse events.

    procedure.py   the record to FHIR and back (`map_infusion`, `unmap_infusion`)
    medication.py  the order, the (es)ketamine administration, adjunct drugs
    events.py      adverse events
    protocol_issues.py  DetectedIssues for the protocol's rules needing a clinician
    common.py      identities of the parts, staff references, dose units

Outside this package, use the names below (or `mappings.kinds`), not its modules.
"""

from __future__ import annotations

from mappings.infusion.procedure import map_infusion, unmap_infusion

__all__ = ["map_infusion", "unmap_infusion"]
