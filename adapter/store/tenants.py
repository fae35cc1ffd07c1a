"""Each tenant's identity in the store: its namespace, fixed once, and its older records.

A tenant's identifier namespace is fixed when the store first accepts one of its documents
(`pin`), from the settings in force then (`ADAPTER_NAMESPACE`, `ADAPTER_TENANT_NAMESPACES`);
from then on the store's word wins over the settings (`tenant_context`), so changing them
never gives a tenant's records new identifiers, which an EHR's conditional updates would
turn into copies. Migration 0007 fixed the namespace every tenant already had.

The records a tenant's encounter held before record ids were scoped by their encounter keep
their identifiers (`encounter_context`, from `legacy_records`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from adapter.errors import StoreUnavailable
from adapter.store.schema import legacy_records, tenants
from mappings.context import MappingContext


def pinned_namespace(conn: Connection, tenant: str) -> str | None:
    """The tenant's fixed namespace, or None before its first document."""
    found = conn.execute(select(tenants.c.namespace).where(tenants.c.tenant == tenant)).scalar()
    return None if found is None else str(found)


def tenant_context(conn: Connection, ctx: MappingContext) -> MappingContext:
    """`ctx` (made from the settings) with the tenant's fixed namespace, once it has one."""
    pinned = pinned_namespace(conn, ctx.tenant)
    return ctx if pinned is None or pinned == ctx.namespace else replace(ctx, namespace=pinned)


def encounter_context(conn: Connection, ctx: MappingContext, encounter_id: str) -> MappingContext:
    """`tenant_context`, plus the encounter's records stored under the older scheme."""
    ctx = tenant_context(conn, ctx)
    rows = conn.execute(
        select(legacy_records.c.field, legacy_records.c.record_id).where(
            legacy_records.c.tenant == ctx.tenant,
            legacy_records.c.encounter_key == encounter_id,
        )
    ).all()
    if not rows:
        return ctx
    pins = frozenset((str(field), encounter_id, str(rid)) for field, rid in rows)
    return replace(ctx, legacy_records=pins)


def pin(conn: Connection, ctx: MappingContext, now: datetime) -> None:
    """Fix the tenant's namespace to `ctx.namespace` (in the caller's write transaction),
    unless it has one; a document mapped under another namespace than the fixed one (two
    processes with different settings raced for a new tenant) must be mapped again."""
    pinned = pinned_namespace(conn, ctx.tenant)
    if pinned is None:
        values = {"tenant": ctx.tenant, "namespace": ctx.namespace, "since": now}
        conn.execute(_insert_unless_there(conn).values(values))
        pinned = pinned_namespace(conn, ctx.tenant)
    if pinned != ctx.namespace:
        raise StoreUnavailable("the tenant's namespace was fixed meanwhile; send it again")


def _insert_unless_there(conn: Connection) -> Insert:
    """An insert of a tenants row that does nothing when the tenant has one. Two first
    documents of a tenant at once (PostgreSQL): the second insert waits for the first
    transaction and then leaves its row, where a plain insert failed the whole document."""
    made = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return made(tenants).on_conflict_do_nothing(index_elements=[tenants.c.tenant])
