"""What `$everything` returns: a Patient's or an Encounter's resources, and what they cite.

The set is: the focal resource; every resource citing it (any reference, from the index's
`REFERENCES` rows); every Provenance citing one of those; and, repeatedly, every resource
any of them cites (practitioners, the clinic, the patient of an encounter, ...). It is
computed as primary keys (small: one patient's records), bounded by the paging snapshot,
and paged by primary key, so a page is as stable as a search's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from adapter.store.schema import resources, search_index
from adapter.store.search import FOUND_COLUMNS, Found, Snapshot
from adapter.store.search_index import REFERENCES

# Enough hops for Observation -> Encounter -> Patient -> Organization; the data has no more.
MAX_HOPS = 4

# The statements, built once with bound values: building them cost about as much CPU as
# SQLite took to run them, several times per request.
_CITING = select(search_index.c.resource_pk).where(
    search_index.c.tenant == bindparam("tenant"),
    search_index.c.param == REFERENCES,
    search_index.c.value.in_(bindparam("references", expanding=True)),
)
_CITING_OF_TYPE = _CITING.where(search_index.c.resource_type == bindparam("resource_type"))
_OWN_REFERENCES = select(resources.c.resource_type, resources.c.logical_id).where(
    resources.c.pk.in_(bindparam("pks", expanding=True))
)
_CITED = select(search_index.c.value).where(
    search_index.c.resource_pk.in_(bindparam("pks", expanding=True)),
    search_index.c.param == REFERENCES,
)
_BOUNDED = select(resources.c.pk).where(
    resources.c.pk.in_(bindparam("pks", expanding=True)),
    resources.c.pk <= bindparam("snapshot_pk"),
    resources.c.deleted.is_(False),
)
_BOUNDED_SINCE = _BOUNDED.where(resources.c.last_updated >= bindparam("since"))
_ROWS = select(*FOUND_COLUMNS).where(resources.c.pk.in_(bindparam("pks", expanding=True)))
# A hop needs only the keys of what is cited; its content is read once, by `rows`.
_PKS_BY_IDS = select(resources.c.pk).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.logical_id.in_(bindparam("ids", expanding=True)),
    resources.c.deleted.is_(False),
)


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
    """The primary keys of the current, undeleted resources named `Type/id`."""
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
    statement = _CITING if resource_type is None else _CITING_OF_TYPE
    named = {"tenant": tenant, "references": references, "resource_type": resource_type}
    return set(conn.execute(statement, named).scalars())


def _references_of(conn: Connection, pks: set[int], *, cited: bool = True) -> list[str]:
    """What the resources `pks` cite (`cited`), or their own `Type/id` (to find citers)."""
    if not pks:
        return []
    named = {"pks": list(pks)}
    if not cited:
        return [f"{row[0]}/{row[1]}" for row in conn.execute(_OWN_REFERENCES, named)]
    return sorted(set(conn.execute(_CITED, named).scalars()))


def _bounded(
    conn: Connection, pks: set[int], snapshot: Snapshot, since: datetime | None
) -> list[int]:
    statement = _BOUNDED if since is None else _BOUNDED_SINCE
    named = {"pks": list(pks), "snapshot_pk": snapshot.pk, "since": since}
    return sorted(conn.execute(statement, named).scalars())


# Dates that say when care happened; a birth date does not.
_NOT_CARE_DATES = ("birthdate",)
_DATED = select(search_index.c.resource_pk).where(
    search_index.c.resource_pk.in_(bindparam("pks", expanding=True)),
    search_index.c.date_lo.is_not(None),
    search_index.c.param.not_in(_NOT_CARE_DATES),
)


def in_period(
    conn: Connection, pks: list[int], start: datetime | None, end: datetime | None
) -> list[int]:
    """`pks` but the resources with a care date none of which meets [start, end)."""
    if not pks:
        return []
    named = {"pks": pks}
    dated = set(conn.execute(_DATED, named).scalars())
    meeting = _DATED
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
    found = {row.pk: Found(*row) for row in conn.execute(_ROWS, {"pks": pks})}
    return [found[pk] for pk in pks if pk in found]
