"""The REMS Patient Monitoring record as a printable HTML page, from FHIR: our Questionnaire,
the session's QuestionnaireResponse and the Patient.

Every question of the Questionnaire gets a row, in the form's order, with its answer as
recorded (or "not recorded"); a repeating group (the sedation and dissociation assessments)
gets one block per repetition. Everything is escaped. Pure: the caller reads the resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject, Resource

NOT_RECORDED = "not recorded"
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; }
th, td { border: 1px solid #888; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { width: 45%; background: #f1f1f1; }
td.missing { color: #a00; font-style: italic; }
.status { font-weight: bold; }
@media print { body { margin: 0.5in; } th { background: none; } }
"""


def render_rems_page(questionnaire: Resource, response: Resource, patient: Resource | None) -> str:
    """The page: heading, the patient, the response's status and time, then every item."""
    title = escape(str_field(questionnaire, "title") or "REMS Patient Monitoring Form")
    rows = _rows(objs(questionnaire.get("item")), objs(response.get("item")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        _header(questionnaire, response, patient),
        *rows,
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(questionnaire: Resource, response: Resource, patient: Resource | None) -> str:
    status = escape(str_field(response, "status") or "unknown")
    cells = [
        ("Healthcare setting", str_field(questionnaire, "publisher") or NOT_RECORDED),
        ("Patient", _patient_name(patient)),
        ("Date of birth", str_field(patient or {}, "birthDate") or NOT_RECORDED),
        ("Monitored by", str_field(obj(response.get("author")), "display") or NOT_RECORDED),
        ("Recorded", _when(str_field(response, "authored"))),
    ]
    lines = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in cells)
    return f'<p class="status">Form status: {status}</p><table>{lines}</table>'


def _patient_name(patient: Resource | None) -> str:
    name = next(iter(objs((patient or {}).get("name"))), {})
    given = name.get("given")
    parts = [str(g) for g in given] if isinstance(given, list) else []
    family = str_field(name, "family")
    parts.extend([family] if family else [])
    return " ".join(parts) or str_field(name, "text") or NOT_RECORDED


def _rows(questions: Sequence[JsonObject], answered: Sequence[JsonObject]) -> list[str]:
    """One table per run of plain questions, a headed table per group."""
    out: list[str] = []
    run: list[str] = []
    for question in questions:
        link = str(question.get("linkId"))
        found = [a for a in answered if a.get("linkId") == link]
        if question.get("type") != "group":
            run.append(_row(question, found[0] if found else None))
            continue
        if run:
            out.append(_table(run))
            run = []
        out.extend(_groups(question, str_field(question, "text") or link, found))
    if run:
        out.append(_table(run))
    return out


def _groups(question: JsonObject, text: str, found: list[JsonObject]) -> list[str]:
    children = objs(question.get("item"))
    blocks = found or [{}]
    out: list[str] = []
    for number, block in enumerate(blocks, start=1):
        heading = f"{text} {number}" if question.get("repeats") else text
        given = objs(block.get("item"))
        rows = [
            _row(child, next((g for g in given if g.get("linkId") == child.get("linkId")), None))
            for child in children
        ]
        out.append(f"<h2>{escape(heading)}</h2>{_table(rows)}")
    return out


def _table(rows: list[str]) -> str:
    return "<table>" + "".join(rows) + "</table>"


def _row(question: JsonObject, answered: JsonObject | None) -> str:
    link = escape(str(question.get("linkId")))
    text = escape(str_field(question, "text") or str(question.get("linkId")))
    values = [_value(a) for a in objs((answered or {}).get("answer"))]
    if not values:
        enabled_by = objs(question.get("enableWhen"))
        shown = "not applicable" if enabled_by else NOT_RECORDED
        return f'<tr><th>{text}</th><td class="missing" data-link-id="{link}">{shown}</td></tr>'
    body = "<br>".join(escape(v) for v in values)
    return f'<tr><th>{text}</th><td data-link-id="{link}">{body}</td></tr>'


def _value(answer: JsonObject) -> str:
    for key, value in answer.items():
        if key == "valueBoolean":
            return "Yes" if value is True else "No"
        if key == "valueQuantity":
            quantity = obj(value)
            unit = quantity.get("unit") or quantity.get("code") or ""
            return f"{quantity.get('value')} {unit}".strip()
        if key == "valueDateTime":
            return _when(str(value))
        if key.startswith("value"):
            return str(value)
    return NOT_RECORDED


def _when(value: str | None) -> str:
    """`2026-12-03T09:10:00-05:00` as `2026-12-03 09:10 (UTC-05:00)`."""
    if not value or "T" not in value:
        return value or NOT_RECORDED
    day, _, rest = value.partition("T")
    clock, offset = rest[:5], rest[8:]
    if offset.startswith("."):
        offset = offset.lstrip(".0123456789")
    zone = "UTC" if offset in ("Z", "+00:00", "") else f"UTC{offset}"
    return f"{day} {clock} ({zone})"
