"""The FHIR search index: the search parameters' values of each current resource, as rows.

Search must not scan JSON, so every write of a resource (`reindex`) replaces its rows in
the same transaction, and a tombstone removes them (`unindex`). What each parameter reads,
per type, is `PARAMETERS` below; the API's search answers from these rows only.

    token      identifier, code, category, status   (system, value)
    reference  patient, subject, encounter, target  value `Type/id`
    date       date                                  [date_lo, date_hi) in UTC
    REFERENCES every reference in the resource, for `$everything` (never a search parameter)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert

from adapter.store.schema import search_index

REFERENCES = "~ref"

_SUBJECT_TYPES = (
    "AdverseEvent",
    "Condition",
    "Encounter",
    "Flag",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "QuestionnaireResponse",
)
# Their status lives elsewhere (clinicalStatus, actuality) under other parameter names.
_NO_STATUS = ("AdverseEvent", "Condition")
_MEDICATION_TYPES = ("MedicationAdministration", "MedicationRequest", "MedicationStatement")
_IDENTIFIED_TYPES = (
    *_SUBJECT_TYPES,
    "AllergyIntolerance",
    "DetectedIssue",
    "Device",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
)


def _each(types: tuple[str, ...], *paths: str) -> dict[str, tuple[str, ...]]:
    return dict.fromkeys(types, paths)


# param -> (kind, {type: paths}); a path is dotted, each step may be a list. A type not
# listed under a parameter does not have it (the CapabilityStatement says so too).
PARAMETERS: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "identifier": ("token", _each(_IDENTIFIED_TYPES, "identifier")),
    "status": (
        "token",
        _each(
            tuple(t for t in (*_SUBJECT_TYPES, "DetectedIssue") if t not in _NO_STATUS),
            "status",
        ),
    ),
    "code": (
        "token",
        _each(
            (
                "Observation",
                "Condition",
                "Flag",
                "Procedure",
                "AllergyIntolerance",
                "DetectedIssue",
            ),
            "code",
        )
        | _each(_MEDICATION_TYPES, "medicationCodeableConcept"),
    ),
    "category": (
        "token",
        _each(("Observation", "Condition", "Flag", *_MEDICATION_TYPES), "category"),
    ),
    "patient": (
        "reference",
        _each(_SUBJECT_TYPES, "subject")
        | _each(("AllergyIntolerance", "DetectedIssue"), "patient"),
    ),
    "subject": ("reference", _each(_SUBJECT_TYPES, "subject")),
    "encounter": (
        "reference",
        _each(
            ("AdverseEvent", "Condition", "Flag", "Observation", "Procedure", "AllergyIntolerance"),
            "encounter",
        )
        | _each(("MedicationRequest", "QuestionnaireResponse"), "encounter")
        | _each(("MedicationAdministration", "MedicationStatement"), "context"),
    ),
    "target": ("reference", {"Provenance": ("target",)}),
    "date": (
        "date",
        {
            "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
            "Encounter": ("period",),
            "MedicationAdministration": ("effectiveDateTime", "effectivePeriod"),
            "MedicationStatement": ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
            "MedicationRequest": ("authoredOn",),
            "Procedure": ("performedDateTime", "performedPeriod"),
            "Condition": ("recordedDate", "onsetDateTime"),
            "AllergyIntolerance": ("recordedDate",),
            "AdverseEvent": ("date",),
            "DetectedIssue": ("identifiedDateTime",),
            "Flag": ("period",),
            "QuestionnaireResponse": ("authored",),
            "Provenance": ("recorded",),
        },
    ),
}

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@dataclass(frozen=True)
class IndexRow:
    param: str
    system: str | None = None
    value: str | None = None
    date_lo: datetime | None = None
    date_hi: datetime | None = None


def paths_for(param: str, resource_type: str) -> tuple[str, ...]:
    """Where `param` reads in a `resource_type` (empty: the type has no such parameter)."""
    kind_paths = PARAMETERS.get(param)
    return () if kind_paths is None else kind_paths[1].get(resource_type, ())


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """A FHIR date/dateTime/instant as its UTC range [lo, hi) at its own precision."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = int(match["y"]), int(match["m"] or 1), int(match["d"] or 1)
    try:
        if match["time"] is None:
            lo = datetime(year, month, day, tzinfo=UTC)
            if match["d"]:
                return lo, lo + timedelta(days=1)
            if match["m"]:
                return lo, _next_month(lo)
            return lo, lo.replace(year=year + 1)
        stamp = f"{match['y']}-{match['m']}-{match['d']}T{match['time']}"
        offset = match["tz"] or "Z"
        moment = datetime.fromisoformat(stamp + offset.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
    precision = len(match["time"])
    step = {5: timedelta(minutes=1), 8: timedelta(seconds=1)}.get(precision, timedelta(0))
    return moment, moment + (step or timedelta(microseconds=1))


def _next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return moment.replace(year=moment.year + 1, month=1)
    return moment.replace(month=moment.month + 1)


def index_rows(
    resource_type: str, content: dict[str, Any], references: Iterable[str] | None = None
) -> list[IndexRow]:
    """The index rows of one resource (duplicates removed). `references`, when the caller
    has them already, are the resource's `reference` strings (saves walking it again)."""
    rows: list[IndexRow] = []
    for param, kind, steps in _plan(resource_type):
        for found in _walk(content, steps):
            rows.extend(_rows(param, kind, found, resource_type))
    cited = _references(content) if references is None else references
    rows.extend(IndexRow(REFERENCES, value=ref) for ref in set(cited) if ref.count("/") == 1)
    return list(dict.fromkeys(rows))


@functools.cache
def _plan(resource_type: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(parameter, kind, path steps) of every parameter the type has, in PARAMETERS order."""
    return tuple(
        (param, kind, tuple(path.split(".")))
        for param, (kind, _) in PARAMETERS.items()
        for path in paths_for(param, resource_type)
    )


def _walk(node: Any, steps: tuple[str, ...]) -> Iterator[Any]:
    if not steps:
        yield from node if isinstance(node, list) else [node]
        return
    for item in node if isinstance(node, list) else [node]:
        if isinstance(item, dict) and steps[0] in item:
            yield from _walk(item[steps[0]], steps[1:])


def _rows(param: str, kind: str, found: Any, resource_type: str) -> Iterator[IndexRow]:
    if kind == "token":
        yield from _tokens(param, found)
    elif kind == "reference":
        ref = found.get("reference") if isinstance(found, dict) else None
        if isinstance(ref, str) and (param != "patient" or ref.startswith("Patient/")):
            yield IndexRow(param, value=ref)
    else:
        yield from _dates(param, found)


def _tokens(param: str, found: Any) -> Iterator[IndexRow]:
    if isinstance(found, str):
        yield IndexRow(param, value=found)
        return
    if not isinstance(found, dict):
        return
    if "value" in found and isinstance(found.get("value"), str):  # an Identifier
        yield IndexRow(param, system=_text(found.get("system")), value=found["value"])
    for coding in found.get("coding", []) if isinstance(found.get("coding"), list) else []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            yield IndexRow(param, system=_text(coding.get("system")), value=coding["code"])


def _dates(param: str, found: Any) -> Iterator[IndexRow]:
    if isinstance(found, str):
        bounds = date_range(found)
        if bounds:
            yield IndexRow(param, date_lo=bounds[0], date_hi=bounds[1])
    elif isinstance(found, dict):  # a Period: open ends reach as far as can be stored
        start = date_range(found["start"]) if isinstance(found.get("start"), str) else None
        end = date_range(found["end"]) if isinstance(found.get("end"), str) else None
        lo = start[0] if start else datetime(1, 1, 1, tzinfo=UTC)
        hi = end[1] if end else datetime(9999, 12, 31, tzinfo=UTC)
        if start or end:
            yield IndexRow(param, date_lo=lo, date_hi=hi)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def reindex(
    conn: Connection, pk: int, tenant: str, resource_type: str, content: dict[str, Any]
) -> None:
    """Replace the index rows of resource `pk` by those of `content`."""
    unindex(conn, pk)
    rows = index_values(pk, tenant, resource_type, content)
    if rows:
        conn.execute(insert(search_index), rows)


def index_values(
    pk: int,
    tenant: str,
    resource_type: str,
    content: dict[str, Any],
    references: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The `search_index` rows of a new resource `pk`, to insert (many at once)."""
    return [
        {
            "resource_pk": pk,
            "tenant": tenant,
            "resource_type": resource_type,
            "param": row.param,
            "system": row.system,
            "value": row.value,
            "date_lo": row.date_lo,
            "date_hi": row.date_hi,
        }
        for row in index_rows(resource_type, content, references)
    ]


def unindex(conn: Connection, pk: int) -> None:
    conn.execute(delete(search_index).where(search_index.c.resource_pk == pk))
