"""audit trail partitioned by month on PostgreSQL

The audit table gets a row for every call and grows without bound. On PostgreSQL it
becomes a table partitioned by range of `at`, one partition a month (`audit_pYYYYMM`)
plus a default partition (`audit_pdefault`) that takes any row no month partition covers,
so an insert never fails. Reads by tenant and time touch the months asked for only, and
retention (`ADAPTER_AUDIT_RETENTION_DAYS`, `adapter.store.audit_upkeep`) drops whole
months instead of deleting rows one by one. The rows keep their ids, public ids and
order; the id sequence carries on where it was. The primary key becomes `(id, at)`: a
partitioned table's unique keys must hold its partition key.

SQLite keeps its one table (retention deletes rows there).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from adapter.store.audit_upkeep import MONTHS_AHEAD, add_month_partitions, month_start

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for statement in (
        "ALTER TABLE audit RENAME TO audit_unpartitioned",
        "ALTER TABLE audit_unpartitioned RENAME CONSTRAINT pk_audit TO pk_audit_unpartitioned",
        "ALTER INDEX ix_audit_tenant_at RENAME TO ix_audit_unpartitioned_tenant_at",
        "CREATE TABLE audit (LIKE audit_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        " PARTITION BY RANGE (at)",
        "ALTER TABLE audit ADD CONSTRAINT pk_audit PRIMARY KEY (id, at)",
        "CREATE INDEX ix_audit_tenant_at ON audit (tenant, at)",
        "CREATE TABLE audit_pdefault PARTITION OF audit DEFAULT",
        "ALTER SEQUENCE audit_id_seq OWNED BY audit.id",
    ):
        conn.execute(sa.text(statement))
    oldest = conn.execute(sa.text("SELECT min(at) FROM audit_unpartitioned")).scalar()
    now = datetime.now(UTC)
    first = month_start(oldest if isinstance(oldest, datetime) else now)
    add_month_partitions(conn, first, now, MONTHS_AHEAD)
    conn.execute(sa.text("INSERT INTO audit SELECT * FROM audit_unpartitioned"))
    conn.execute(sa.text("DROP TABLE audit_unpartitioned"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for statement in (
        "ALTER TABLE audit RENAME TO audit_partitioned",
        "ALTER TABLE audit_partitioned RENAME CONSTRAINT pk_audit TO pk_audit_partitioned",
        "ALTER INDEX ix_audit_tenant_at RENAME TO ix_audit_partitioned_tenant_at",
        "CREATE TABLE audit (LIKE audit_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        "ALTER TABLE audit ADD CONSTRAINT pk_audit PRIMARY KEY (id)",
        "CREATE INDEX ix_audit_tenant_at ON audit (tenant, at)",
        "ALTER SEQUENCE audit_id_seq OWNED BY audit.id",
        "INSERT INTO audit SELECT * FROM audit_partitioned",
        "DROP TABLE audit_partitioned",
    ):
        conn.execute(sa.text(statement))
