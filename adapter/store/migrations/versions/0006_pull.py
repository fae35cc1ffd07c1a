"""pull from the EHR: find resources by the EHR's id, keep conflicts

Revision ID: 0006
Revises: 0005s
Create Date: 2026-11-25 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provenance", sa.Text(), nullable=True))
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resources_tenant_resource_type_ehr_id"),
            ["tenant", "resource_type", "ehr_id"],
            unique=False,
        )
    op.create_table(
        "pull_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("resource_pk", sa.Integer(), nullable=False),
        sa.Column("ehr_id", sa.String(length=64), nullable=False),
        sa.Column("ehr_version", sa.String(length=64), nullable=False),
        sa.Column("ehr_etag", sa.String(length=80), nullable=True),
        sa.Column("ehr_content", sa.Text(), nullable=False),
        sa.Column("local_version", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"],
            ["resources.pk"],
            name=op.f("fk_pull_conflicts_resource_pk_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_conflicts")),
        sa.UniqueConstraint(
            "resource_pk", "ehr_version", name=op.f("uq_pull_conflicts_resource_pk_ehr_version")
        ),
    )
    with op.batch_alter_table("pull_conflicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pull_conflicts_tenant_state"), ["tenant", "state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pull_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pull_conflicts_tenant_state"))
    op.drop_table("pull_conflicts")
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resources_tenant_resource_type_ehr_id"))
    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.drop_column("provenance")
