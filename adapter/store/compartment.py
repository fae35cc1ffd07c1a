"""What `$everything` returns: a Patient's or an Encounter's resources, and what they cite.

The set is: the focal resource; every resource citing it (any reference, from the index's
`REFERENCES` rows); every Provenance citing one of those; and, repeatedly, every resource
any of them cites (practitioners, the clinic, the patient of an encounter, ...). It is
computed as primary keys (small: one patient's records), bounded by the paging snapshot,
and paged by primary key, so a page is as stable as a search's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from adapter.store.schema import resources, search_index
from adapter.store.search import FOUND_COLUMNS, Found, Snapshot, by_reference
from adapter.store.search_index import REFERENCES

# Enough hops for Observation -> Encounter -> Patient -> Organization; the data has no more.
MAX_HOPS = 4


def everything(
    conn: Connection, tenant: str, focal: Found, snapshot: Snapshot, since: datetime | None
) -> list[int]:
    """The primary keys of `focal`'s `$everything`, ascending (see the module doc)."""
    members = {focal.pk} | _citing(conn, tenant, [focal.reference], None)
    members |= _citing(conn, tenant, _references_of(conn, members, cited=False), "Provenance")
    frontier = set(members)
    for _ in range(MAX_HOPS):
        cited = {found.pk for found in by_reference(conn, tenant, _references_of(conn, frontier))}
        frontier = cited - members
        if not frontier:
            break
        members |= frontier
    return _bounded(conn, members, snapshot, since)


def _citing(
    conn: Connection, tenant: str, references: list[str], resource_type: str | None
) -> set[int]:
    if not references:
        return set()
    statement = select(search_index.c.resource_pk).where(
        search_index.c.tenant == tenant,
        search_index.c.param == REFERENCES,
        search_index.c.value.in_(references),
    )
    if resource_type is not None:
        statement = statement.where(search_index.c.resource_type == resource_type)
    return set(conn.execute(statement).scalars())


def _references_of(conn: Connection, pks: set[int], *, cited: bool = True) -> list[str]:
    """What the resources `pks` cite (`cited`), or their own `Type/id` (to find citers)."""
    if not pks:
        return []
    if not cited:
        own = select(resources.c.resource_type, resources.c.logical_id).where(
            resources.c.pk.in_(pks)
        )
        return [f"{row[0]}/{row[1]}" for row in conn.execute(own)]
    statement = select(search_index.c.value).where(
        search_index.c.resource_pk.in_(pks), search_index.c.param == REFERENCES
    )
    return sorted(set(conn.execute(statement).scalars()))


def _bounded(
    conn: Connection, pks: set[int], snapshot: Snapshot, since: datetime | None
) -> list[int]:
    statement = select(resources.c.pk).where(
        resources.c.pk.in_(pks), resources.c.pk <= snapshot.pk, resources.c.deleted.is_(False)
    )
    if since is not None:
        statement = statement.where(resources.c.last_updated >= since)
    return sorted(conn.execute(statement).scalars())


def rows(conn: Connection, pks: list[int]) -> list[Found]:
    """The resources `pks`, in that order."""
    if not pks:
        return []
    statement = select(*FOUND_COLUMNS).where(resources.c.pk.in_(pks))
    found = {row.pk: Found(*row) for row in conn.execute(statement)}
    return [found[pk] for pk in pks if pk in found]
