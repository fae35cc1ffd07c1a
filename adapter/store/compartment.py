"""What `$everything` returns: a Patient's or an Encounter's resources, and what they cite.

The set is: the focal resource; every resource citing it (any reference, from the index's
`REFERENCES` rows); every Provenance citing one of those; and, repeatedly, every resource
any of them cites (practitioners, the clinic, the patient of an encounter, ...). It is
computed as primary keys (small: one patient's records), bounded by the paging snapshot,
and paged by primary key, so a page is as stable as a search's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Connection, Select, any_, bindparam, select, tuple_

from adapter.store.schema import resources, search_index
from adapter.store.search import FOUND_COLUMNS, Found, Snapshot
from adapter.store.search_index import REFERENCES

# Enough hops for Observation -> Encounter -> Patient -> Organization; the data has no more.
MAX_HOPS = 4

# Dates that say when care happened; a birth date does not.
_NOT_CARE_DATES = ("birthdate",)

# The statements, built once with bound values: building them cost about as much CPU as
# SQLite took to run them, several times per request. One set per database (`_one_of`).


def _one_of(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """`column` among the list bound as `name`. On PostgreSQL an array (`= ANY`): the
    statement's text is the same for any number of values, so psycopg prepares it once and
    PostgreSQL plans it once, where an expanded IN was a new statement for each length.
    SQLite has no arrays: an expanded IN."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Statements:
    citing: Select[Any]
    citing_of_type: Select[Any]
    own_references: Select[Any]
    cited: Select[Any]
    bounded: Select[Any]
    bounded_since: Select[Any]
    rows: Select[Any]
    dated: Select[Any]

    @classmethod
    def build(cls, postgres: bool) -> _Statements:
        citing = select(search_index.c.resource_pk).where(
            search_index.c.tenant == bindparam("tenant"),
            search_index.c.param == REFERENCES,
            _one_of(search_index.c.value, "references", postgres),
        )
        bounded = select(resources.c.pk).where(
            _one_of(resources.c.pk, "pks", postgres),
            resources.c.pk <= bindparam("snapshot_pk"),
            resources.c.deleted.is_(False),
        )
        return cls(
            citing=citing,
            citing_of_type=citing.where(search_index.c.resource_type == bindparam("resource_type")),
            own_references=select(resources.c.resource_type, resources.c.logical_id).where(
                _one_of(resources.c.pk, "pks", postgres)
            ),
            cited=select(search_index.c.value).where(
                _one_of(search_index.c.resource_pk, "pks", postgres),
                search_index.c.param == REFERENCES,
            ),
            bounded=bounded,
            bounded_since=bounded.where(resources.c.last_updated >= bindparam("since")),
            rows=select(*FOUND_COLUMNS).where(_one_of(resources.c.pk, "pks", postgres)),
            dated=select(search_index.c.resource_pk).where(
                _one_of(search_index.c.resource_pk, "pks", postgres),
                search_index.c.date_lo.is_not(None),
                search_index.c.param.not_in(_NOT_CARE_DATES),
            ),
        )


_SQLITE = _Statements.build(postgres=False)
_POSTGRES = _Statements.build(postgres=True)
# A hop needs only the keys of what is cited; its content is read once, by `rows`. SQLite:
# one statement per resource type; PostgreSQL: all of a hop in one (see `_keys`).
_PKS_BY_IDS = select(resources.c.pk).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.logical_id.in_(bindparam("ids", expanding=True)),
    resources.c.deleted.is_(False),
)
_PKS_BY_REFERENCES = select(resources.c.pk).where(
    resources.c.tenant == bindparam("tenant"),
    tuple_(resources.c.resource_type, resources.c.logical_id).in_(
        bindparam("pairs", expanding=True)
    ),
    resources.c.deleted.is_(False),
)


def _statements(conn: Connection) -> _Statements:
    return _POSTGRES if conn.dialect.name == "postgresql" else _SQLITE


def everything(
    conn: Connection, tenant: str, focal: Found, snapshot: Snapshot, since: datetime | None
) -> list[int]:
    """The primary keys of `focal`'s `$everything`, ascending (see the module doc)."""
    members = {focal.pk} | _citing(conn, tenant, [focal.reference], None)
    members |= _citing(conn, tenant, _references_of(conn, members, cited=False), "Provenance")
    frontier = set(members)
    for _ in range(MAX_HOPS):
        frontier = _keys(conn, tenant, _references_of(conn, frontier)) - members
        if not frontier:
            break
        members |= frontier
    return _bounded(conn, members, snapshot, since)


def _keys(conn: Connection, tenant: str, references: list[str]) -> set[int]:
    """The primary keys of the current, undeleted resources named `Type/id`.

    PostgreSQL answers all of them in one statement, a row-value IN that it plans as one
    probe of the unique (tenant, type, id) index per pair; a statement per type cost a
    round trip each, 19 of the 29 statements of an `$everything`. SQLite plans that same
    statement as a scan of the tenant's resources, so there it stays one per type."""
    if not references:
        return set()
    if conn.dialect.name == "postgresql":
        pairs = [reference.partition("/")[::2] for reference in references]
        named = {"tenant": tenant, "pairs": pairs}
        return set(conn.execute(_PKS_BY_REFERENCES, named).scalars())
    by_type: dict[str, list[str]] = {}
    for reference in references:
        resource_type, _, logical_id = reference.partition("/")
        by_type.setdefault(resource_type, []).append(logical_id)
    keys: set[int] = set()
    for resource_type, ids in by_type.items():
        named = {"tenant": tenant, "resource_type": resource_type, "ids": ids}
        keys.update(conn.execute(_PKS_BY_IDS, named).scalars())
    return keys


def _citing(
    conn: Connection, tenant: str, references: list[str], resource_type: str | None
) -> set[int]:
    if not references:
        return set()
    known = _statements(conn)
    statement = known.citing if resource_type is None else known.citing_of_type
    named = {"tenant": tenant, "references": references, "resource_type": resource_type}
    return set(conn.execute(statement, named).scalars())


def _references_of(conn: Connection, pks: set[int], *, cited: bool = True) -> list[str]:
    """What the resources `pks` cite (`cited`), or their own `Type/id` (to find citers)."""
    if not pks:
        return []
    named = {"pks": list(pks)}
    if not cited:
        own = conn.execute(_statements(conn).own_references, named)
        return [f"{row[0]}/{row[1]}" for row in own]
    return sorted(set(conn.execute(_statements(conn).cited, named).scalars()))


def _bounded(
    conn: Connection, pks: set[int], snapshot: Snapshot, since: datetime | None
) -> list[int]:
    known = _statements(conn)
    statement = known.bounded if since is None else known.bounded_since
    named = {"pks": list(pks), "snapshot_pk": snapshot.pk, "since": since}
    return sorted(conn.execute(statement, named).scalars())


def in_period(
    conn: Connection, pks: list[int], start: datetime | None, end: datetime | None
) -> list[int]:
    """`pks` but the resources with a care date none of which meets [start, end)."""
    if not pks:
        return []
    named = {"pks": pks}
    dated_statement = _statements(conn).dated
    dated = set(conn.execute(dated_statement, named).scalars())
    meeting = dated_statement
    if start is not None:
        meeting = meeting.where(search_index.c.date_hi > start)
    if end is not None:
        meeting = meeting.where(search_index.c.date_lo < end)
    kept = set(conn.execute(meeting, named).scalars())
    return [pk for pk in pks if pk not in dated or pk in kept]


def rows(conn: Connection, pks: list[int]) -> list[Found]:
    """The resources `pks`, in that order."""
    if not pks:
        return []
    found = {row.pk: Found(*row) for row in conn.execute(_statements(conn).rows, {"pks": pks})}
    return [found[pk] for pk in pks if pk in found]
