"""The encounter's care records: consent, discharge, the treatment course, and the Spravato
REMS Patient Monitoring record of an esketamine session.

    consent.py     informed consent: Consent
    discharge.py   fit to leave, escort, instructions: one Observation
    course.py      the treatment course: CarePlan, and the Encounter's place in it
    rems.py        the REMS form: our Questionnaire and the session's QuestionnaireResponse
    rems_page.py   the filled-in form as a printable HTML page
    records.py     all of them at once, for an encounter document

They come with a whole encounter document (`map_care`), never with one record sent alone.
Outside this package, use the names below, not its modules.
"""

from __future__ import annotations

from mappings.care.course import session_extension
from mappings.care.records import map_care, unmap_care
from mappings.care.rems import FORM as REMS_FORM
from mappings.care.rems import ITEMS as REMS_ITEMS
from mappings.care.rems import KIND as REMS_KIND
from mappings.care.rems import Item as RemsItem
from mappings.care.rems import questionnaire_url
from mappings.care.rems_page import render_rems_page

__all__ = [
    "REMS_FORM",
    "REMS_ITEMS",
    "REMS_KIND",
    "RemsItem",
    "map_care",
    "questionnaire_url",
    "render_rems_page",
    "session_extension",
    "unmap_care",
]
