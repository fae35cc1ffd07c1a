"""FHIR Subscriptions and their durable notification queue

`subscriptions` holds each tenant's Subscriptions (R4 Backport IG) with their delivery
state; `subscription_notifications` their handshakes, heartbeats and numbered events, each
written in the transaction of the change that raised it (`adapter.store.subscriptions`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("fhir_base", sa.Text(), nullable=False),
        sa.Column("content", sa.String(length=16), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=False),
        sa.Column("events_count", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        op.f("ix_subscriptions_tenant_public_id"),
        "subscriptions",
        ["tenant", "public_id"],
        unique=True,
    )
    op.create_index(
        op.f("ix_subscriptions_tenant_status_topic"),
        "subscriptions",
        ["tenant", "status", "topic"],
        unique=False,
    )
    op.create_table(
        "subscription_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("event_number", sa.Integer(), nullable=True),
        sa.Column("focus_type", sa.String(length=64), nullable=True),
        sa.Column("focus_id", sa.String(length=64), nullable=True),
        sa.Column("focus_version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=8), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_notifications_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_notifications")),
    )
    op.create_index(
        op.f("ix_subscription_notifications_subscription_id_sent_at_id"),
        "subscription_notifications",
        ["subscription_id", "sent_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_subscription_notifications_subscription_id_event_number"),
        "subscription_notifications",
        ["subscription_id", "event_number"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("subscription_notifications")
    op.drop_table("subscriptions")
