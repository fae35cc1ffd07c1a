"""The screening's answers as QuestionnaireResponses (one per instrument), and back.

The responses are the lossless home of the whole record: every answer (false ones
included), the escort and the notes. Scores, findings and alerts are derived from
them, so the reverse mapping reads the responses only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import coding, fhir_datetime
from mappings.common.lookup import by_identity, coding_key, obj, objs
from mappings.context import MappingContext
from mappings.contract import Contraindications, CssrsScreener, IntakeScreening
from mappings.intake.base import CHECKLIST, IntakeFrame, link_id, response_identity
from mappings.jsontypes import JsonObject, JsonValue, Resource

LOINC_QUESTIONNAIRE = "http://loinc.org/q/"
"""Canonical of a LOINC panel's questionnaire (US Core / SDC convention)."""
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"

INSTRUMENTS = "screening_instruments"
ITEMS = "screening_items"
ANSWERS = "screening_answers"
CHECKLIST_ITEMS = "intake_checklist"
FREQUENCY = "frequency-"
"""Key prefix of the LL358-3 answers; the rest of the key is the item score."""


@dataclass(frozen=True)
class ScoredInstrument:
    """An instrument answered with item scores: PHQ-9 and GAD-7 coded, PCL-5 as integers."""

    part: str
    item_count: int
    coded: bool


SCORED = (
    ScoredInstrument("phq9", 9, coded=True),
    ScoredInstrument("gad7", 7, coded=True),
    ScoredInstrument("pcl5", 20, coded=False),
)
CSSRS = "cssrs"
CSSRS_ITEMS = tuple(CssrsScreener.model_fields)
CONTRAINDICATION_KEYS = tuple(Contraindications.model_fields)


def scored_answers(record: IntakeScreening, part: str) -> list[int] | None:
    answers: list[int] | None = getattr(record, part)
    return answers


def map_responses(frame: IntakeFrame) -> list[Resource]:
    """One response per instrument answered, then the checklist response."""
    out: list[Resource] = []
    for instrument in SCORED:
        answers = scored_answers(frame.record, instrument.part)
        if answers is not None:
            out.append(
                _response(frame, instrument.part, _scored_items(instrument, answers, frame.ctx))
            )
    if frame.record.cssrs is not None:
        out.append(_response(frame, CSSRS, _cssrs_items(frame.record.cssrs, frame.ctx)))
    out.append(_response(frame, CHECKLIST, _checklist_items(frame.record, frame.ctx)))
    return out


def _response(frame: IntakeFrame, part: str, items: list[JsonValue]) -> Resource:
    ident = frame.identity("QuestionnaireResponse", part)
    out = frame.head("QuestionnaireResponse", part)
    out["identifier"] = ident.identifier()  # 0..1 in R4, not a list
    out["questionnaire"] = questionnaire_canonical(part, frame.ctx)
    out["status"] = "completed"
    out["subject"] = frame.patient
    out["encounter"] = frame.encounter
    out["authored"] = frame.completed
    if part in {i.part for i in SCORED}:
        out["source"] = frame.patient  # PHQ-9, GAD-7 and PCL-5 are self-reports
    out["item"] = items
    return out


def questionnaire_canonical(part: str, ctx: MappingContext) -> str:
    """The LOINC panel's questionnaire when the table has a LOINC panel, else the clinic's."""
    panel = terminology.code(INSTRUMENTS, f"{part}-questionnaire")
    if panel.system == terminology.systems()["loinc"]:
        return LOINC_QUESTIONNAIRE + panel.code
    return f"{ctx.namespace}/Questionnaire/{panel.code}"


def _item(table: str, key: str, answer: JsonObject) -> JsonObject:
    text = terminology.code(table, key).display
    return {"linkId": link_id(table, key), "text": text, "answer": [answer]}


def _group(table: str, key: str, items: list[JsonValue]) -> JsonObject:
    text = terminology.code(table, key).display
    return {"linkId": link_id(table, key), "text": text, "item": items}


def _scored_items(
    instrument: ScoredInstrument, answers: list[int], ctx: MappingContext
) -> list[JsonValue]:
    items: list[JsonValue] = []
    for number, score in enumerate(answers, start=1):
        key = f"{instrument.part}-{number}"
        answer: JsonObject = {"valueInteger": score}
        if instrument.coded:
            answer = _frequency(score, ctx)
        items.append(_item(ITEMS, key, answer))
    items.append(_item(INSTRUMENTS, f"{instrument.part}-total", {"valueInteger": sum(answers)}))
    return items


def _frequency(score: int, ctx: MappingContext) -> JsonObject:
    """An LL358-3 answer, with its score as `ordinalValue` for readers without the list."""
    ordinal: JsonObject = {"url": ORDINAL_VALUE, "valueDecimal": score}
    answer = coding(terminology.code(ANSWERS, f"{FREQUENCY}{score}"), ctx)
    return {"valueCoding": {"extension": [ordinal], **answer}}


def _yes_no(value: bool, ctx: MappingContext) -> JsonObject:
    return {"valueCoding": coding(terminology.code(ANSWERS, "yes" if value else "no"), ctx)}


def _cssrs_items(cssrs: CssrsScreener, ctx: MappingContext) -> list[JsonValue]:
    return [
        _item(ITEMS, f"{CSSRS}-{name}", _yes_no(getattr(cssrs, name), ctx)) for name in CSSRS_ITEMS
    ]


def _checklist_items(record: IntakeScreening, ctx: MappingContext) -> list[JsonValue]:
    """Every checklist answer, and the optional readiness answers that were given."""
    answers = record.contraindications
    items: list[JsonValue] = [
        _group(
            CHECKLIST_ITEMS,
            "contraindications",
            [
                _item(CHECKLIST_ITEMS, key, {"valueBoolean": getattr(answers, key)})
                for key in CONTRAINDICATION_KEYS
            ],
        )
    ]
    optional: list[tuple[str, JsonObject | None]] = [
        ("bipolar_disorder", _maybe("valueBoolean", record.bipolar_disorder)),
        ("pain_score", _maybe("valueInteger", record.pain_score)),
        ("last_oral_intake_at", _maybe_time(record)),
    ]
    items.extend(_item(CHECKLIST_ITEMS, key, answer) for key, answer in optional if answer)
    if record.escort is not None:
        escort: list[tuple[str, JsonObject | None]] = [
            ("escort_confirmed", {"valueBoolean": record.escort.confirmed}),
            ("escort_name", _maybe("valueString", record.escort.name)),
            ("escort_phone", _maybe("valueString", record.escort.phone)),
        ]
        members: list[JsonValue] = [
            _item(CHECKLIST_ITEMS, key, answer) for key, answer in escort if answer
        ]
        items.append(_group(CHECKLIST_ITEMS, "escort", members))
    if record.notes is not None:
        items.append(_item(CHECKLIST_ITEMS, "notes", {"valueString": record.notes}))
    return items


def _maybe(key: str, value: bool | int | str | None) -> JsonObject | None:
    return None if value is None else {key: value}


def _maybe_time(record: IntakeScreening) -> JsonObject | None:
    when = record.last_oral_intake_at
    return None if when is None else {"valueDateTime": fhir_datetime(when)}


# ---------------------------------------------------------------- reverse


def unmap_responses(
    resources: Sequence[Resource], checklist: Resource, screening_key: str, ctx: MappingContext
) -> JsonObject:
    """The contract document of the screening (named by its record key), read from its
    responses."""
    document: JsonObject = {
        "screening_id": identity.record_id_of(screening_key),
        "completed_at": checklist.get("authored"),
    }
    for instrument in SCORED:
        found = by_identity(resources, response_identity(ctx, screening_key, instrument.part))
        document[instrument.part] = _scores(found, instrument, ctx) if found else None
    cssrs = by_identity(resources, response_identity(ctx, screening_key, CSSRS))
    document[CSSRS] = _cssrs(cssrs, ctx) if cssrs else None
    document.update(_checklist(answers_by_link(checklist)))
    return document


def answers_by_link(res: JsonObject) -> dict[str, JsonObject]:
    """The first answer of every item, nested ones included, by linkId."""
    out: dict[str, JsonObject] = {}
    for item in objs(res.get("item")):
        link = item.get("linkId")
        answers = objs(item.get("answer"))
        if isinstance(link, str) and answers:
            out[link] = answers[0]
        out.update(answers_by_link(item))
    return out


def _scores(res: Resource, instrument: ScoredInstrument, ctx: MappingContext) -> list[JsonValue]:
    answers = answers_by_link(res)
    out: list[JsonValue] = []
    for number in range(1, instrument.item_count + 1):
        answer = answers.get(link_id(ITEMS, f"{instrument.part}-{number}"), {})
        out.append(
            _frequency_score(answer, ctx) if instrument.coded else answer.get("valueInteger")
        )
    return out


def _frequency_score(answer: JsonObject, ctx: MappingContext) -> int | None:
    key = coding_key(ANSWERS, {"coding": [answer.get("valueCoding")]}, ctx)
    if key is None or not key.startswith(FREQUENCY):
        return None
    return int(key.removeprefix(FREQUENCY))


def _cssrs(res: Resource, ctx: MappingContext) -> JsonObject:
    answers = answers_by_link(res)
    out: JsonObject = {}
    for name in CSSRS_ITEMS:
        answer = answers.get(link_id(ITEMS, f"{CSSRS}-{name}"), {})
        key = coding_key(ANSWERS, {"coding": [answer.get("valueCoding")]}, ctx)
        out[name] = {"yes": True, "no": False}.get(key or "")
    return out


def _checklist(answers: dict[str, JsonObject]) -> JsonObject:
    def value(key: str, element: str) -> JsonValue:
        return obj(answers.get(link_id(CHECKLIST_ITEMS, key))).get(element)

    escort: JsonObject | None = None
    confirmed = value("escort_confirmed", "valueBoolean")
    if confirmed is not None:
        escort = {
            "confirmed": confirmed,
            "name": value("escort_name", "valueString"),
            "phone": value("escort_phone", "valueString"),
        }
    return {
        "contraindications": {key: value(key, "valueBoolean") for key in CONTRAINDICATION_KEYS},
        "pain_score": value("pain_score", "valueInteger"),
        "bipolar_disorder": value("bipolar_disorder", "valueBoolean"),
        "last_oral_intake_at": value("last_oral_intake_at", "valueDateTime"),
        "escort": escort,
        "notes": value("notes", "valueString"),
    }
