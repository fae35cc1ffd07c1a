"""FHIR search index, backfilled from the current resources

Revision ID: 0005s
Revises: 0004
Create Date: 2026-11-25 01:40:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from adapter.store.search_index import reindex

revision = "0005s"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=512), nullable=True),
        sa.Column("value", sa.String(length=512), nullable=True),
        sa.Column("date_lo", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_hi", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resources.pk"], name=op.f("fk_search_index_resource_pk_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_index")),
    )
    with op.batch_alter_table("search_index", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_search_index_tenant_resource_type_param_value"),
            ["tenant", "resource_type", "param", "value"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_search_index_tenant_resource_type_param_date_lo"),
            ["tenant", "resource_type", "param", "date_lo"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_search_index_tenant_param_value"),
            ["tenant", "param", "value"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_search_index_resource_pk"), ["resource_pk"], unique=False
        )
    _backfill()


def _backfill() -> None:
    """Index every current, undeleted resource already stored (one pass, by primary key)."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT pk, tenant, resource_type, content FROM resources "
            "WHERE deleted = :deleted ORDER BY pk"
        ),
        {"deleted": False},
    )
    for pk, tenant, resource_type, content in rows.fetchall():
        reindex(conn, pk, tenant, resource_type, json.loads(content))


def downgrade() -> None:
    with op.batch_alter_table("search_index", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_index_resource_pk"))
        batch_op.drop_index(batch_op.f("ix_search_index_tenant_param_value"))
        batch_op.drop_index(batch_op.f("ix_search_index_tenant_resource_type_param_date_lo"))
        batch_op.drop_index(batch_op.f("ix_search_index_tenant_resource_type_param_value"))

    op.drop_table("search_index")
