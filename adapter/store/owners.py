"""Who owns an identifier: the tenant that first wrote it, and no other tenant, ever.

Every identifier the adapter writes for a tenant (and pushes to the EHR, where a conditional
update by identifier finds it whoever sends it) is recorded here with its tenant when first
accepted (`claim`, in the transaction that accepts it; the primary key settles two tenants
racing for one). A document whose identifiers another tenant owns is refused
(`owned_elsewhere`), and the pull never takes such a resource into the wrong tenant.

With per-tenant namespaces no two tenants' identifiers can be equal; with a shared one
(`ADAPTER_TENANT_NAMESPACES=shared`) this is what keeps a clinic off another's patients.
The adapter's own Device is exempt: every tenant of a shared namespace writes the same one,
with the same content (nothing of a tenant's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from adapter.store.bulk import insert_many
from adapter.store.schema import identifier_owners
from mappings.common.identity import Identity

EXEMPT_TYPES = frozenset({"Device"})
# Values per statement: far below SQLite's and PostgreSQL's bound value limits.
CHUNK = 2000

Pair = tuple[str, str]


def owners(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, str]:
    """The owning tenant of each (system, value) pair that has one.

    Asked as two IN lists (systems, values), not a row-value IN: PostgreSQL compares every
    row of the table with every pair of a row-value list, a cost that grows with the store
    times the document; this form is answered from the primary key. It can match a system
    with another pair's value: only the pairs asked for are kept.
    """
    wanted = sorted(set(pairs))
    found: dict[Pair, str] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(
                identifier_owners.c.system, identifier_owners.c.value, identifier_owners.c.tenant
            ).where(
                identifier_owners.c.system.in_({s for s, _ in chunk}),
                identifier_owners.c.value.in_({v for _, v in chunk}),
            )
        )
        found.update({(str(s), str(v)): str(t) for s, v, t in rows})
    asked = set(wanted)
    return {pair: tenant for pair, tenant in found.items() if pair in asked}


def owned_elsewhere(
    conn: Connection, tenant: str, identities: Iterable[Identity]
) -> list[Identity]:
    """The identities (Device aside) that another tenant owns, in the order given."""
    foreign, _ = _split(conn, tenant, identities)
    return foreign


def claim(
    conn: Connection, tenant: str, identities: Iterable[Identity], now: datetime
) -> list[Identity]:
    """Record `tenant` as the owner of the identities nobody owns yet, in the caller's write
    transaction, unless another tenant owns one of them: then claim nothing and return
    those. (Of two first claims racing, the second fails its transaction on the primary key;
    its retry finds the owner.)"""
    foreign, new = _split(conn, tenant, identities)
    if not foreign:
        columns = ("system", "value", "tenant", "since")
        insert_many(conn, identifier_owners, columns, [(s, v, tenant, now) for s, v in new])
    return foreign


def _split(
    conn: Connection, tenant: str, identities: Iterable[Identity]
) -> tuple[list[Identity], list[Pair]]:
    """The identities another tenant owns, and the pairs nobody owns yet."""
    wanted = [i for i in identities if i.resource_type not in EXEMPT_TYPES]
    found = owners(conn, ((i.system, i.value) for i in wanted))
    foreign = [i for i in wanted if found.get((i.system, i.value), tenant) != tenant]
    new = sorted({(i.system, i.value) for i in wanted} - set(found))
    return foreign, new


def _chunks(pairs: Sequence[Pair]) -> Iterator[Sequence[Pair]]:
    for start in range(0, len(pairs), CHUNK):
        yield pairs[start : start + CHUNK]
