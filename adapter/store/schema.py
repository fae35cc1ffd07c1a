"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this is the map.

    submissions        one row per accepted clinic document (its hash, what it touched)
    resources          the current version of every FHIR resource we hold, per tenant
    resource_versions  every version ever stored (content, tombstone flag, source, provenance)
    outbox             work for the push worker: one entry per accepted change set
    sync_state         per-tenant cursors and markers (pull cursors, ...)
    audit              who did what to which ids, when, with what outcome (no content)
    idempotency_keys   the clinic API's `Idempotency-Key`s per tenant, with the stored answer
    search_index       the FHIR search parameters' values of every current resource
    pull_conflicts     EHR versions that met an unsent clinic change, kept for an operator
    tenants            each tenant's identifier namespace, fixed at its first document
    legacy_records     records stored before record ids were scoped by their encounter
    identifier_owners  which tenant first wrote each identifier (no other may write it)
    smart_assertions   the `jti`s of SMART client assertions already used (replay refusal)
    export_jobs        Bulk Data `$export` jobs: who, what, as of when, how far
    export_files       the NDJSON files each export job wrote
    subscriptions      FHIR Subscriptions (R4 Backport IG): topic, filters, channel, status
    subscription_notifications  each subscription's durable queue: handshakes, heartbeats and
                       its events, numbered without gaps (`adapter.store.subscriptions`)

Content is stored as the exact JSON bytes the mappings produced (UTF-8 text), so a
resource read back is byte-identical to what was validated.
"""

from __future__ import annotations

import secrets

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# Outbox entry states (see adapter.store.outbox for the life cycle).
PENDING = "pending"
IN_FLIGHT = "in_flight"
DONE = "done"
DEAD = "dead"
CONFLICT = "conflict"

Id = String(64)
Key = String(512)

submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    # What the clinic sees (receipts, status URLs): random, so no count shows through.
    # Submissions received before migration 0007 kept their number as their public id.
    # Never NULL, but declared nullable: SQLite cannot make a column of a table others
    # refer to NOT NULL without rebuilding it under their rows.
    Column("public_id", Id, nullable=True, default=lambda: secrets.token_hex(16)),
    Column("kind", String(32), nullable=False),
    Column("encounter_key", Id, nullable=False),
    Column("patient_key", Id, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("changed_count", Integer, nullable=False),
    Column("outbox_id", Integer, nullable=True),
    Index(None, "tenant", "encounter_key"),
    Index(None, "tenant", "public_id", unique=True),
)

resources = Table(
    "resources",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", Id, nullable=False),
    Column("identifier_system", Key, nullable=False),
    Column("identifier_value", Key, nullable=False),
    Column("patient_key", Id, nullable=True),
    Column("scope_key", Key, nullable=True),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("ehr_id", Id, nullable=True),
    Column("ehr_version", String(64), nullable=True),
    Column("ehr_etag", String(80), nullable=True),
    UniqueConstraint("tenant", "resource_type", "logical_id"),
    UniqueConstraint("tenant", "resource_type", "identifier_system", "identifier_value"),
    Index(None, "tenant", "scope_key"),
    Index(None, "tenant", "patient_key"),
    Index(None, "tenant", "last_updated"),
    # The pull finds our copy of what the EHR answers by the EHR's id.
    Index(None, "tenant", "resource_type", "ehr_id"),
    # `$export` reads a type's rows in the table's own order (adapter.store.export_read).
    Index(None, "tenant", "resource_type", "pk"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_pk", Integer, ForeignKey("resources.pk"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content", Text, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),
    # For a version taken from the EHR (source "ehr"): the FHIR Provenance saying which
    # EHR version it is, when we took it and what we did with it.
    Column("provenance", Text, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("patient_key", Id, nullable=False),
    Column("encounter_key", Id, nullable=False),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
    Column("resource_keys", JSON, nullable=False),
    # True when the entry writes a resource every patient's Bundles refer to (the clinic,
    # a practitioner): then later entries of ALL patients wait for it.
    Column("carries_shared", Boolean, nullable=False, default=False, server_default="0"),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("available_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "state", "available_at"),
    Index(None, "tenant", "patient_key", "id"),
)

# One row per successful delivery of an outbox entry: a FHIR Provenance (kept here, not sent)
# tying the clinic submission and our resources to what the EHR made of them.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("outbox_id", Integer, ForeignKey("outbox.id"), nullable=False),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("provenance", Text, nullable=False),
    Index(None, "tenant", "outbox_id"),
)

delivered_resources = Table(
    "delivered_resources",
    metadata,
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), primary_key=True),
    Column("resource_key", Key, primary_key=True),
    Column("ehr_reference", Key, nullable=True),
    Column("ehr_version", String(64), nullable=True),
    Column("ehr_etag", String(80), nullable=True),
    Index(None, "ehr_reference"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("tenant", Id, primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    # The AuditEvent's id on /admin/AuditEvent: random, so no count shows through.
    Column("public_id", String(32), nullable=False, default=lambda: secrets.token_hex(16)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("tenant", Id, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("object", Key, nullable=False),
    Column("count", Integer, nullable=False, default=0),
    Column("outcome", String(32), nullable=False),
    Index(None, "tenant", "at"),
)

# One row per `Idempotency-Key` a tenant used on the clinic API. `status` is NULL while the
# request is being processed (a reservation); then it and `response_body` hold the answer to
# replay. The unique (tenant, key) makes two concurrent first uses of one key safe.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("key", String(255), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "key"),
    Index(None, "created_at"),
)

# The FHIR search index: one row per (resource, search parameter, value), rewritten in the
# transaction that writes the resource (see adapter.store.search_index). `value` holds a
# token's code or a reference (`Type/id`); `date_lo`/`date_hi` a date's range [lo, hi).
search_index = Table(
    "search_index",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("resource_pk", Integer, ForeignKey("resources.pk"), nullable=False),
    Column("tenant", Id, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("param", String(32), nullable=False),
    Column("system", Key, nullable=True),
    Column("value", Key, nullable=True),
    Column("date_lo", DateTime(timezone=True), nullable=True),
    Column("date_hi", DateTime(timezone=True), nullable=True),
    Index(None, "tenant", "resource_type", "param", "value"),
    Index(None, "tenant", "resource_type", "param", "date_lo"),
    # `$everything` finds what cites a resource, whatever the citing type.
    Index(None, "tenant", "param", "value"),
    Index(None, "resource_pk"),
)

# Conflict states: `open` until an operator chooses a side (`adapter conflicts`).
OPEN = "open"
RESOLVED = "resolved"

# An EHR version of one of our resources that arrived while the clinic's own change to it
# was still unsent: both are kept, neither overwrites the other until an operator chooses.
# `ehr_content` is the EHR's version in our terms (references to our logical ids).
pull_conflicts = Table(
    "pull_conflicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("resource_pk", Integer, ForeignKey("resources.pk"), nullable=False),
    Column("ehr_id", Id, nullable=False),
    Column("ehr_version", String(64), nullable=False),
    Column("ehr_etag", String(80), nullable=True),
    Column("ehr_content", Text, nullable=False),
    Column("local_version", Integer, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("resolution", String(16), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("resource_pk", "ehr_version"),
    Index(None, "tenant", "state"),
)

# Each tenant's identifier namespace, fixed when the store first accepts a document of the
# tenant (see adapter.store.tenants): changing ADAPTER_TENANT_NAMESPACES or ADAPTER_NAMESPACE
# later never changes the identifiers of a tenant the store already holds.
tenants = Table(
    "tenants",
    metadata,
    Column("tenant", Id, primary_key=True),
    Column("namespace", Key, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)

# The records a store held (and may have pushed) before record ids were scoped by their
# encounter: their identifiers keep the older form (`mappings.common.identity.record_key`). Written
# once, by migration 0007; `field` is the contract's id field (`vitals_id`, ...).
legacy_records = Table(
    "legacy_records",
    metadata,
    Column("tenant", Id, primary_key=True),
    Column("encounter_key", Id, primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("record_id", Id, primary_key=True),
)

# The tenant that first wrote each identifier we push (see adapter.store.owners): no other
# tenant may write it, whatever the namespaces, so no clinic can reach another's data on an
# EHR through a shared identifier.
identifier_owners = Table(
    "identifier_owners",
    metadata,
    Column("system", Key, primary_key=True),
    Column("value", Key, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)

# Each SMART client assertion's `jti` the token endpoint accepted, kept until the assertion
# expires (see adapter.store.assertions): a second use is refused in every web process and
# after a restart.
smart_assertions = Table(
    "smart_assertions",
    metadata,
    Column("client_id", Key, primary_key=True),
    Column("jti", Key, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "expires_at"),
)

# Bulk Data `$export` jobs (see adapter.store.export_jobs): who asked (tenant, owner: the
# caller's key id), what (`parameters`, JSON), as of when (`transaction_time`: the snapshot),
# and how far it got. `heartbeat_at` moves while a process works on the job: a running job
# whose heartbeat stopped was left by a process that died, and is ended as failed.
export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", Id, nullable=False),
    Column("tenant", Id, nullable=False),
    Column("owner", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("request_url", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("transaction_time", DateTime(timezone=True), nullable=False),
    Column("progress", String(128), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Index(None, "public_id", unique=True),
    Index(None, "tenant", "owner", "state"),
)

# The NDJSON files of an export job, in the order written: `kind` is `output`, `deleted` or
# `error`; `name` the file's name in the export folder.
export_files = Table(
    "export_files",
    metadata,
    Column("job_id", Integer, ForeignKey("export_jobs.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("name", Id, nullable=False),
    Column("count", Integer, nullable=False),
)


# FHIR Subscriptions (adapter.store.subscriptions). A subscription's `events_count` is its
# eventsSinceSubscriptionStart: raising an event adds one to it in the transaction of the
# change, so event numbers are gapless per subscription. The delivery lease is on the
# subscription, so one deliverer at a time sends a subscription's notifications, in order.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", Id, nullable=False),
    Column("public_id", Id, nullable=False),
    Column("version", Integer, nullable=False),
    Column("topic", Key, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resource", Text, nullable=False),
    Column("filters", JSON, nullable=False),
    Column("endpoint", Text, nullable=False),
    # The /fhir base the subscription was made through: notifications' references use it.
    Column("fhir_base", Text, nullable=False),
    Column("content", String(16), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("heartbeat_seconds", Integer, nullable=True),
    Column("timeout_seconds", Integer, nullable=False),
    Column("max_count", Integer, nullable=False),
    Column("events_count", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_sent_at", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "tenant", "public_id", unique=True),
    Index(None, "tenant", "status", "topic"),
)

subscription_notifications = Table(
    "subscription_notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # handshake, heartbeat or event-notification; only events carry a number and a focus.
    Column("kind", String(24), nullable=False),
    Column("event_number", Integer, nullable=True),
    Column("focus_type", String(64), nullable=True),
    Column("focus_id", Id, nullable=True),
    Column("focus_version", Integer, nullable=True),
    Column("action", String(8), nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index(None, "subscription_id", "sent_at", "id"),
    Index(None, "subscription_id", "event_number", unique=True),
)
