"""delivery lineage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 22:58:57.708812
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_deliveries_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_deliveries_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_tenant_outbox_id"), ["tenant", "outbox_id"], unique=False
        )

    op.create_table(
        "delivered_resources",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("resource_key", sa.String(length=512), nullable=False),
        sa.Column("ehr_reference", sa.String(length=512), nullable=True),
        sa.Column("ehr_version", sa.String(length=64), nullable=True),
        sa.Column("ehr_etag", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivered_resources_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("delivery_id", "resource_key", name=op.f("pk_delivered_resources")),
    )
    with op.batch_alter_table("delivered_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivered_resources_ehr_reference"), ["ehr_reference"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivered_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivered_resources_ehr_reference"))

    op.drop_table("delivered_resources")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_tenant_outbox_id"))

    op.drop_table("deliveries")
