"""tenants and identity: fixed namespaces, older records kept, id owners, opaque ids, lineage

What the store already holds keeps its identifiers, so nothing already on an EHR is sent
again under a new identifier (which the EHR's conditional update would turn into a copy):

- `tenants`: each tenant with data gets the namespace its records were written under (read
  from its clinic Organization, `<namespace>/sid/clinic|<tenant>`; else its Patients),
  whatever the settings say now;
- `legacy_records`: every record (screening, infusion, vitals reading, medication review)
  the store holds keeps its identifiers without the encounter id in front
  (`mappings.common.identity.record_key`), in the encounter it is in now;
- `identifier_owners`: each identifier the clinics wrote belongs to the tenant that stored
  it first (a count of identifiers two tenants share is logged; the later tenant's copies
  are refused on resend and ignored by the pull);
- `submissions.public_id`: the submission's number, so status URLs already handed out keep
  working; new submissions get random ids. `audit.public_id`: random for every row;
  audit objects naming an outbox entry or a conflict by number now name the submission
  (`Submission/<public id>`) or the resource;
- the pull's versions get the security labels, and their Provenances become resources
  (`adapter.store.ehr_provenance`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

# The modules the running adapter labels and stores the pull's lineage with: the data
# written here is what it would have written.
from adapter.store.accept import sha256
from adapter.store.ehr_provenance import LINEAGE_SYSTEM, Lineage, insert_lineage
from mappings.common.builders import labelled
from mappings.common.serialize import dumps
from mappings.context import SecurityLabels

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# The identifier kinds of the records inside an encounter, by the contract field naming
# them (as in mappings.kinds, written out: a migration must not change later).
RECORD_FIELDS = {
    "intake": "screening_id",
    "infusion": "procedure_id",
    "infusion-adjunct": "procedure_id",
    "infusion-adverse-event": "procedure_id",
    "vitals": "vitals_id",
    "medication-review": "review_id",
    "medication-statement": "review_id",
    "allergy": "review_id",
    "medication-interaction": "review_id",
}
_SYSTEM = re.compile(r"^(?P<namespace>.+)/sid/(?P<kind>[a-z-]+)$")
BATCH = 1000

resources = sa.table(
    "resources",
    sa.column("pk", sa.Integer),
    sa.column("tenant", sa.String),
    sa.column("resource_type", sa.String),
    sa.column("logical_id", sa.String),
    sa.column("identifier_system", sa.String),
    sa.column("identifier_value", sa.String),
    sa.column("patient_key", sa.String),
    sa.column("scope_key", sa.String),
    sa.column("version", sa.Integer),
    sa.column("content_hash", sa.String),
    sa.column("content", sa.Text),
)
versions = sa.table(
    "resource_versions",
    sa.column("resource_pk", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("content", sa.Text),
    sa.column("recorded_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("provenance", sa.Text),
)
index = sa.table("search_index", sa.column("resource_pk", sa.Integer))
tenants = sa.table(
    "tenants",
    sa.column("tenant", sa.String),
    sa.column("namespace", sa.String),
    sa.column("since", sa.DateTime(timezone=True)),
)
legacy_records = sa.table(
    "legacy_records",
    sa.column("tenant", sa.String),
    sa.column("encounter_key", sa.String),
    sa.column("field", sa.String),
    sa.column("record_id", sa.String),
)
owners = sa.table(
    "identifier_owners",
    sa.column("system", sa.String),
    sa.column("value", sa.String),
    sa.column("tenant", sa.String),
    sa.column("since", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
    conn = op.get_bind()
    now = datetime.now(UTC)
    _pin_tenants(conn, now)
    _keep_record_identifiers(conn)
    _own_identifiers(conn, now)
    _public_ids(conn)
    _label_and_trace_pulled_versions(conn, now)
    # A plain index, and the column left nullable: SQLite could change either only by
    # rebuilding the table, under the rows of the tables referring to it.
    op.create_index(
        op.f("ix_submissions_tenant_public_id"), "submissions", ["tenant", "public_id"], unique=True
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)


def _create_tables() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=512), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_tenants")),
    )
    op.create_table(
        "legacy_records",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("encounter_key", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "encounter_key", "field", "record_id", name=op.f("pk_legacy_records")
        ),
    )
    op.create_table(
        "identifier_owners",
        sa.Column("system", sa.String(length=512), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "value", name=op.f("pk_identifier_owners")),
    )


def _pin_tenants(conn: sa.Connection, now: datetime) -> None:
    """Each tenant's namespace: its newest clinic Organization's, else its newest Patient's."""
    found: dict[str, str] = {}
    for resource_type, kind in (("Patient", "mrn"), ("Organization", "clinic")):
        rows = conn.execute(  # the clinic's wins (read last), the newest of each
            sa.select(
                resources.c.tenant, resources.c.identifier_system, resources.c.identifier_value
            )
            .where(
                resources.c.resource_type == resource_type,
                resources.c.identifier_system.like(f"%/sid/{kind}"),
            )
            .order_by(resources.c.pk)
        )
        for tenant, system, value in rows:
            if kind == "clinic" and value != tenant:
                continue
            found[tenant] = system.removesuffix(f"/sid/{kind}")
    if found:
        pinned = [{"tenant": t, "namespace": ns, "since": now} for t, ns in sorted(found.items())]
        op.bulk_insert(tenants, pinned)


def _keep_record_identifiers(conn: sa.Connection) -> None:
    """Every record held keeps its identifiers, in the encounter its scope names now."""
    pins: set[tuple[str, str, str, str]] = set()
    rows = conn.execute(
        sa.select(
            resources.c.tenant,
            resources.c.identifier_system,
            resources.c.identifier_value,
            resources.c.scope_key,
        ).where(resources.c.scope_key.is_not(None))
    )
    for tenant, system, value, scope in rows:
        match = _SYSTEM.match(system)
        field = RECORD_FIELDS.get(match["kind"]) if match else None
        encounter = _encounter_of(scope)
        if field is not None and encounter is not None:
            pins.add((tenant, encounter, field, value.split("~", 1)[0]))
    keys = ("tenant", "encounter_key", "field", "record_id")
    for chunk in _chunks(sorted(pins)):
        op.bulk_insert(legacy_records, [dict(zip(keys, pin, strict=True)) for pin in chunk])


def _encounter_of(scope: str) -> str | None:
    """The encounter of a scope key: `encounter:<id>` or `<record kind>:<id>:<record id>`."""
    parts = scope.split(":")
    return parts[1] if len(parts) >= 2 and parts[1] else None


def _own_identifiers(conn: sa.Connection, now: datetime) -> None:
    """Each identifier the clinics wrote belongs to the tenant that stored it first."""
    clinic_written = sa.exists().where(
        versions.c.resource_pk == resources.c.pk, versions.c.source == "clinic"
    )
    rows = conn.execute(
        sa.select(resources.c.tenant, resources.c.identifier_system, resources.c.identifier_value)
        .where(clinic_written, resources.c.resource_type != "Device")
        .order_by(resources.c.pk)
    )
    owner: dict[tuple[str, str], str] = {}
    shared = 0
    for tenant, system, value in rows:
        first = owner.setdefault((system, value), tenant)
        shared += first != tenant
    for chunk in _chunks(sorted(owner.items())):
        op.bulk_insert(
            owners, [{"system": s, "value": v, "tenant": t, "since": now} for (s, v), t in chunk]
        )
    if shared:
        log.warning(
            "0007: %d identifiers were written by more than one tenant (a shared namespace); "
            "each now belongs to the tenant that stored it first",
            shared,
        )


def _public_ids(conn: sa.Connection) -> None:
    conn.execute(sa.text("UPDATE submissions SET public_id = CAST(id AS VARCHAR(64))"))
    random_hex = (
        "replace(CAST(gen_random_uuid() AS TEXT), '-', '')"
        if conn.dialect.name == "postgresql"
        else "lower(hex(randomblob(16)))"
    )
    conn.execute(sa.text(f"UPDATE audit SET public_id = {random_hex}"))
    _rename_audit_objects(conn)


def _rename_audit_objects(conn: sa.Connection) -> None:
    """`outbox/<n>` -> `Submission/<public id>`, `pull_conflicts/<n>` -> `Type/<id>`: what a
    tenant reads on /admin/AuditEvent must not count anything across tenants."""
    submissions: dict[str, str] = dict(
        conn.execute(
            sa.text(
                "SELECT 'outbox/' || CAST(o.id AS VARCHAR(20)), 'Submission/' || s.public_id "
                "FROM outbox o JOIN submissions s ON s.id = o.submission_id"
            )
        ).all()
    )
    conflicts: dict[str, str] = dict(
        conn.execute(
            sa.text(
                "SELECT 'pull_conflicts/' || CAST(c.id AS VARCHAR(20)), "
                "r.resource_type || '/' || r.logical_id "
                "FROM pull_conflicts c JOIN resources r ON r.pk = c.resource_pk"
            )
        ).all()
    )
    named = conn.execute(
        sa.text(
            "SELECT DISTINCT object FROM audit "
            "WHERE object LIKE 'outbox/%' OR object LIKE 'pull_conflicts/%'"
        )
    ).scalars()
    for old in list(named):
        new = submissions.get(old) or conflicts.get(old) or "(internal)"
        conn.execute(
            sa.text("UPDATE audit SET object = :new WHERE object = :old"), {"new": new, "old": old}
        )


def _label_and_trace_pulled_versions(conn: sa.Connection, now: datetime) -> None:
    """The pull's versions get our security labels; their Provenances become resources."""
    security = SecurityLabels()
    rows = conn.execute(
        sa.select(
            resources.c.pk,
            resources.c.tenant,
            resources.c.resource_type,
            resources.c.logical_id,
            resources.c.patient_key,
            resources.c.version.label("current"),
            versions.c.version,
            versions.c.content,
            versions.c.provenance,
        )
        .join(versions, versions.c.resource_pk == resources.c.pk)
        .where(versions.c.source == "ehr")
        .order_by(resources.c.pk, versions.c.version)
    ).all()
    traced: dict[str, list[Lineage]] = {}
    for row in rows:
        content = orjson.loads(row.content)
        text = dumps(labelled(content, security)).decode() if isinstance(content, dict) else None
        if text is not None:
            _relabel(conn, row, text)
        if row.provenance:
            key = f"{row.resource_type}/{row.logical_id}"
            lineage = Lineage(key, row.version, row.patient_key, orjson.loads(row.provenance))
            traced.setdefault(row.tenant, []).append(lineage)
    for tenant, found in traced.items():
        for chunk in _chunks(found):
            insert_lineage(conn, tenant, chunk, security, now)


def _relabel(conn: sa.Connection, row: Any, text: str) -> None:
    conn.execute(
        sa.update(versions)
        .where(versions.c.resource_pk == row.pk, versions.c.version == row.version)
        .values(content=text)
    )
    if row.version == row.current:
        conn.execute(
            sa.update(resources)
            .where(resources.c.pk == row.pk)
            .values(content=text, content_hash=sha256(text.encode()))
        )


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def downgrade() -> None:
    """Back to 0006: the pull's Provenance resources go (they stay beside their versions);
    labels stay; identifiers, pins and owners are forgotten."""
    conn = op.get_bind()
    pks = sa.select(resources.c.pk).where(resources.c.identifier_system == LINEAGE_SYSTEM)
    conn.execute(sa.delete(index).where(index.c.resource_pk.in_(pks)))
    conn.execute(sa.delete(versions).where(versions.c.resource_pk.in_(pks)))
    conn.execute(sa.delete(resources).where(resources.c.identifier_system == LINEAGE_SYSTEM))
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_column("public_id")
    op.drop_index(op.f("ix_submissions_tenant_public_id"), table_name="submissions")
    # Not rebuilt in batch mode: SQLite (3.35+) drops the column in place, where a rebuild
    # would drop the old table under the rows of the tables referring to it.
    conn.exec_driver_sql("ALTER TABLE submissions DROP COLUMN public_id")
    op.drop_table("identifier_owners")
    op.drop_table("legacy_records")
    op.drop_table("tenants")
