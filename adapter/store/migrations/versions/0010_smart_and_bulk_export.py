"""SMART client assertions used (replay refusal) and Bulk Data $export jobs and files

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-06 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smart_assertions",
        sa.Column("client_id", sa.String(length=512), nullable=False),
        sa.Column("jti", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_smart_assertions")),
    )
    op.create_index(
        op.f("ix_smart_assertions_expires_at"), "smart_assertions", ["expires_at"], unique=False
    )
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("progress", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
    )
    op.create_index(op.f("ix_export_jobs_public_id"), "export_jobs", ["public_id"], unique=True)
    op.create_index(
        op.f("ix_export_jobs_tenant_owner_state"),
        "export_jobs",
        ["tenant", "owner", "state"],
        unique=False,
    )
    op.create_table(
        "export_files",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["export_jobs.id"], name=op.f("fk_export_files_job_id_export_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_export_files")),
    )


def downgrade() -> None:
    op.drop_table("export_files")
    op.drop_index(op.f("ix_export_jobs_tenant_owner_state"), table_name="export_jobs")
    op.drop_index(op.f("ix_export_jobs_public_id"), table_name="export_jobs")
    op.drop_table("export_jobs")
    op.drop_index(op.f("ix_smart_assertions_expires_at"), table_name="smart_assertions")
    op.drop_table("smart_assertions")
