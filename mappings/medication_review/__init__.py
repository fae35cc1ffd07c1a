"""The medication review record kind: reconciliation, statements, allergies, interactions.

    review.py        the record to FHIR and back (`map_medication_review`, ...)
    statements.py    one MedicationStatement per reviewed medication
    allergies.py     AllergyIntolerances, or "no known allergies"
    interactions.py  the interaction screen's DetectedIssues
    codes.py         RxNorm codes of the drugs
    refs.py          the identities of the review's resources
    ehr_lists.py     medication and allergy entries as an EHR wrote them
    ehr_screen.py    the interaction screen over the EHR's medication list

Outside this package, use the names below (or `mappings.kinds`), not its modules; `refs`
is listed for the adapter's patient view, which finds our statements and allergies by it.
"""

from __future__ import annotations

from mappings.medication_review import refs
from mappings.medication_review.allergies import unmap_allergy
from mappings.medication_review.ehr_lists import (
    edited_medication,
    ehr_allergy,
    ehr_medication,
    is_current_allergy,
    is_no_known_allergy,
)
from mappings.medication_review.ehr_screen import (
    SCREEN_KIND,
    resolve_issue,
    screen_ehr_medications,
)
from mappings.medication_review.review import map_medication_review, unmap_medication_review
from mappings.medication_review.statements import unmap_statement

__all__ = [
    "SCREEN_KIND",
    "edited_medication",
    "ehr_allergy",
    "ehr_medication",
    "is_current_allergy",
    "is_no_known_allergy",
    "map_medication_review",
    "refs",
    "resolve_issue",
    "screen_ehr_medications",
    "unmap_allergy",
    "unmap_medication_review",
    "unmap_statement",
]
