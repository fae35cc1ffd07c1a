"""The intake screening record kind: questionnaires, scores, findings and alerts.

    screening.py  the record to FHIR and back (`map_intake`, `unmap_intake`)
    base.py       identity and the references every part repeats
    responses.py  QuestionnaireResponses: PHQ-9, GAD-7, PCL-5, C-SSRS, checklist
    scores.py     survey Observations: totals, suicide risk, pain, pregnancy, fasting
    findings.py   Conditions for positive findings; AllergyIntolerance to ketamine
    alerts.py     DetectedIssues (contraindication, fasting, escort) and Flags

Outside this package, use the names below (or `mappings.kinds`), not its modules.
"""

from __future__ import annotations

from mappings.intake.screening import map_intake, unmap_intake

__all__ = ["map_intake", "unmap_intake"]
