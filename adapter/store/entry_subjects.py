"""What outbox entries (and submissions) are about, named by our logical ids.

An outbox entry is keyed by the patient's MRN and the clinic's encounter id (`patient_key`,
`encounter_key`): the store needs them, an operator's screen does not. What an operator is
shown instead is the Patient and the Encounter the entry writes, as `Type/<logical id>`
(a hash that never shows an MRN), the same names `GET /fhir` and `adapter lineage` use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, tuple_

from adapter.store.schema import resources

NOT_STORED = "(not stored)"
CONFLICT_PREFIX = "conflict:"  # a conflict's entry is keyed by the resource it is about
# (tenant, key) pairs per statement: two bound values each, far below SQLite's limit.
CHUNK = 400

Pair = tuple[str, str]


@dataclass(frozen=True)
class EntryKeys:
    tenant: str
    patient_key: str
    encounter_key: str


@dataclass(frozen=True)
class Subject:
    patient: str
    """`Patient/<logical id>`, or NOT_STORED."""
    encounter: str
    """`Encounter/<logical id>`, the conflict's `conflict:Type/<logical id>`, or NOT_STORED."""


def subjects(conn: Connection, entries: Sequence[EntryKeys]) -> list[Subject]:
    """Each entry's Patient and Encounter by logical id, in the order given."""
    patients = _logical_ids(
        conn, "Patient", resources.c.patient_key, {(e.tenant, e.patient_key) for e in entries}
    )
    found = encounters(conn, {(e.tenant, e.encounter_key) for e in entries})
    return [
        Subject(
            patients.get((e.tenant, e.patient_key), NOT_STORED),
            e.encounter_key
            if e.encounter_key.startswith(CONFLICT_PREFIX)
            else found.get((e.tenant, e.encounter_key), NOT_STORED),
        )
        for e in entries
    ]


def encounters(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, str]:
    """`Encounter/<logical id>` by (tenant, the clinic's encounter id), for those stored."""
    wanted = {pair for pair in pairs if not pair[1].startswith(CONFLICT_PREFIX)}
    return _logical_ids(conn, "Encounter", resources.c.identifier_value, wanted)


def _logical_ids(
    conn: Connection, resource_type: str, key: ColumnElement[Any], pairs: Iterable[Pair]
) -> dict[Pair, str]:
    """`Type/<logical id>` of the resources of `resource_type` by (tenant, `key` column)."""
    ordered = sorted(pairs)
    found: dict[Pair, str] = {}
    for start in range(0, len(ordered), CHUNK):
        rows = conn.execute(
            select(resources.c.tenant, key, resources.c.logical_id).where(
                resources.c.resource_type == resource_type,
                tuple_(resources.c.tenant, key).in_(ordered[start : start + CHUNK]),
            )
        )
        for tenant, value, logical_id in rows:
            found[(tenant, value)] = f"{resource_type}/{logical_id}"
    return found
