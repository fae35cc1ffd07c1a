"""What a Bulk Data `$export` kick-off asks for, checked: plain data kept with the job.

`export_request` reads the kick-off's parameters (the query string of a GET, or the FHIR
`Parameters` of a POST, as (name, value) pairs) and refuses with a 400 naming the
parameter anything that cannot be served: an `_outputFormat` other than NDJSON, an unknown
`_type`, a `_since` that is not a FHIR instant, a `_typeFilter` whose search `/fhir` would
refuse (parsed by the FHIR face's own `parse_search`), an `_elements` that is not element
names, `patient` on a system kick-off, and any other parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

import orjson

from adapter.api.fhir.params import parse_date, parse_search
from adapter.api.fhir.resource_types import SERVED_TYPES
from adapter.errors import RequestRefused
from adapter.store.search_index import paths_for

NDJSON_FORMATS = frozenset(
    {"application/fhir+ndjson", "application/ndjson", "ndjson", "application/fhir ndjson"}
)
SYSTEM, PATIENT, GROUP = "system", "patient", "group"
# The types of a Patient compartment here: the Patient, what names a patient, Provenances.
COMPARTMENT_TYPES = tuple(
    kind for kind in SERVED_TYPES if kind in ("Patient", "Provenance") or paths_for("patient", kind)
)
_ELEMENT = re.compile(r"([A-Z][A-Za-z]{0,63}\.)?[a-z][A-Za-z0-9]{0,63}")
_REFERENCE = re.compile(r"(?:.*/)?Patient/([A-Za-z0-9\-.]{1,64})")


@dataclass(frozen=True)
class ExportRequest:
    level: str
    group_id: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    type_filters: dict[str, list[str]] = field(default_factory=dict)
    elements: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()

    def to_json(self) -> str:
        values = asdict(self) | {"since": self.since.isoformat() if self.since else None}
        return orjson.dumps(values).decode()

    @classmethod
    def from_json(cls, text: str) -> ExportRequest:
        values = orjson.loads(text)
        since = values.pop("since")
        return cls(
            **values
            | {
                "types": tuple(values["types"]),
                "elements": tuple(values["elements"]),
                "patients": tuple(values["patients"]),
                "since": datetime.fromisoformat(since) if since else None,
            }
        )


def export_request(
    level: str, group_id: str | None, pairs: Sequence[tuple[str, str]]
) -> ExportRequest:
    """The request the kick-off's parameters describe (types not yet narrowed by scope)."""
    types: list[str] = []
    filters: dict[str, list[str]] = {}
    elements: list[str] = []
    patients: list[str] = []
    since: datetime | None = None
    for name, value in pairs:
        if name == "_outputFormat":
            if value.strip().replace(" ", "+").lower() not in NDJSON_FORMATS:
                raise RequestRefused("_outputFormat: only application/fhir+ndjson is offered")
        elif name == "_type":
            types += _types(value)
        elif name == "_since":
            since = parse_date("_since", value).lo
        elif name == "_typeFilter":
            kind, query = _type_filter(value)
            filters.setdefault(kind, []).append(query)
        elif name == "_elements":
            elements += _elements(value)
        elif name == "patient" and level != SYSTEM:
            patients.append(_patient(value))
        else:
            raise RequestRefused(f"{_shown(name)}: not a parameter of $export here")
    chosen = tuple(dict.fromkeys(types)) or _default_types(level)
    if level != SYSTEM:
        chosen = tuple(kind for kind in chosen if kind in COMPARTMENT_TYPES)
    return ExportRequest(level, group_id, chosen, since, filters, tuple(elements), tuple(patients))


def _default_types(level: str) -> tuple[str, ...]:
    return SERVED_TYPES if level == SYSTEM else COMPARTMENT_TYPES


def _types(value: str) -> list[str]:
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    for kind in kinds:
        if kind not in SERVED_TYPES:
            raise RequestRefused(f"_type: {_shown(kind)} is not a type served here")
    return kinds


def _type_filter(value: str) -> tuple[str, str]:
    kind, _, query = value.partition("?")
    if kind not in SERVED_TYPES or not query:
        raise RequestRefused("_typeFilter: must read <Type>?<search parameters> of a served type")
    parse_search(kind, parse_qsl(query, keep_blank_values=True), strict=True)
    return kind, query


def _elements(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or not all(_ELEMENT.fullmatch(name) for name in names):
        raise RequestRefused("_elements: must list element names (e.g. id,status,Patient.name)")
    return names


def _patient(value: str) -> str:
    found = _REFERENCE.fullmatch(value.strip())
    if found is None:
        raise RequestRefused("patient: must be a reference Patient/<id>")
    return found[1]


def _shown(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]{0,40}", name) else "a parameter"
