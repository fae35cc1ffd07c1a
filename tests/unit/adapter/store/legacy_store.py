"""A store as the adapter wrote it before migration 0007, for the migration's tests.

The schema is migration 0006's. The rows are what `adapter.store.accept` wrote then for a
first receipt (a submission, each resource with its first version and index rows, one
outbox entry), and the content is what the mappings made then: the same mappings, with
every record of the document kept under the older identifier scheme
(`MappingContext.legacy_records`: no encounter id in record identifiers), in the
namespace the tenant had. Nothing here imports the code under test's idea of the newer
schema: the tables are written out as 0006 had them.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from adapter.store.bulk import insert_many
from adapter.store.migrate import upgrade
from adapter.store.schema import search_index
from adapter.store.search_index import INDEX_COLUMNS, index_values
from mappings.common import identity
from mappings.common.bundle import resource_identity
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import map_submission
from mappings.jsontypes import Resource

REVISION = "0006"
SHARED_TYPES = frozenset({"Organization", "Device", "Practitioner", "PractitionerRole", "Patient"})
TENANT_SHARED = SHARED_TYPES - {"Patient"}

_submissions = sa.table(
    "submissions",
    sa.column("id", sa.Integer),
    sa.column("tenant", sa.String),
    sa.column("kind", sa.String),
    sa.column("encounter_key", sa.String),
    sa.column("patient_key", sa.String),
    sa.column("content_hash", sa.String),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("changed_count", sa.Integer),
    sa.column("outbox_id", sa.Integer),
)
_resources = sa.table(
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
    sa.column("deleted", sa.Boolean),
    sa.column("last_updated", sa.DateTime(timezone=True)),
)
_versions = sa.table(
    "resource_versions",
    sa.column("resource_pk", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("content", sa.Text),
    sa.column("deleted", sa.Boolean),
    sa.column("recorded_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("submission_id", sa.Integer),
    sa.column("provenance", sa.Text),
)
_outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("tenant", sa.String),
    sa.column("patient_key", sa.String),
    sa.column("encounter_key", sa.String),
    sa.column("submission_id", sa.Integer),
    sa.column("resource_keys", sa.JSON),
    sa.column("carries_shared", sa.Boolean),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("available_at", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
audit_0006 = sa.table(
    "audit",
    sa.column("id", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("tenant", sa.String),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("object", sa.String),
    sa.column("count", sa.Integer),
    sa.column("outcome", sa.String),
)


def migrated_to_0006(engine: Engine) -> None:
    upgrade(engine, REVISION)


def old_context(sub: EncounterSubmission, namespace: str, tenant: str) -> MappingContext:
    """The context the older code mapped `sub` with: every record under the older ids."""
    eid = sub.encounter_id
    pins = {(identity.VITALS, eid, v.vitals_id) for v in sub.vitals or ()}
    if sub.intake_screening is not None:
        pins.add((identity.SCREENING, eid, sub.intake_screening.screening_id))
    if sub.infusion is not None:
        pins.add((identity.PROCEDURE, eid, sub.infusion.procedure_id))
    if sub.medication_review is not None:
        pins.add((identity.REVIEW, eid, sub.medication_review.review_id))
    ctx = MappingContext(namespace=namespace, tenant=tenant)
    return replace(ctx, legacy_records=frozenset(pins))


def accept_0006(
    conn: Connection, sub: EncounterSubmission, ctx: MappingContext, now: datetime
) -> tuple[int, list[str]]:
    """A first receipt of `sub` as the older accept stored it: (outbox id, resource keys)."""
    document = sub.model_dump_json(exclude_none=True).encode()
    submission_id = conn.execute(
        sa.insert(_submissions)
        .values(
            tenant=ctx.tenant, kind="encounter", encounter_key=sub.encounter_id,
            patient_key=sub.patient.mrn, content_hash=hashlib.sha256(document).hexdigest(),
            received_at=now, changed_count=0,
        )
        .returning(_submissions.c.id)
    ).scalar_one()  # fmt: skip
    keys = [_store(conn, res, sub, ctx, submission_id, now) for res in map_submission(sub, ctx)]
    outbox_id = conn.execute(
        sa.insert(_outbox)
        .values(
            tenant=ctx.tenant, patient_key=sub.patient.mrn, encounter_key=sub.encounter_id,
            submission_id=submission_id, resource_keys=keys,
            carries_shared=any(k.split("/")[0] in TENANT_SHARED for k in keys), state="pending",
            attempts=0, available_at=now, created_at=now, updated_at=now,
        )
        .returning(_outbox.c.id)
    ).scalar_one()  # fmt: skip
    conn.execute(
        sa.update(_submissions)
        .where(_submissions.c.id == submission_id)
        .values(changed_count=len(keys), outbox_id=outbox_id)
    )
    return int(outbox_id), keys


def _store(
    conn: Connection,
    res: Resource,
    sub: EncounterSubmission,
    ctx: MappingContext,
    submission_id: int,
    now: datetime,
) -> str:
    ident = resource_identity(res, ctx)
    text = dumps(res).decode()
    scope = None if ident.resource_type in SHARED_TYPES else f"encounter:{sub.encounter_id}"
    pk = conn.execute(
        sa.insert(_resources)
        .values(
            tenant=ctx.tenant, resource_type=ident.resource_type, logical_id=ident.id,
            identifier_system=ident.system, identifier_value=ident.value,
            patient_key=sub.patient.mrn, scope_key=scope,
            version=1, content_hash=hashlib.sha256(text.encode()).hexdigest(), content=text,
            deleted=False, last_updated=now,
        )
        .returning(_resources.c.pk)
    ).scalar_one()  # fmt: skip
    conn.execute(
        sa.insert(_versions).values(
            resource_pk=pk, version=1, content=text, deleted=False, recorded_at=now,
            source="clinic", submission_id=submission_id,
        )
    )  # fmt: skip
    rows = index_values(pk, ctx.tenant, ident.resource_type, res)
    insert_many(conn, search_index, INDEX_COLUMNS, rows)
    return f"{ident.resource_type}/{ident.id}"


def ehr_version_0006(
    conn: Connection, key: str, tenant: str, content: str, provenance: str, now: datetime
) -> None:
    """A version the older pull wrote for `key`: no labels, its Provenance kept aside."""
    resource_type, _, logical_id = key.partition("/")
    row = conn.execute(
        sa.select(_resources.c.pk, _resources.c.version).where(
            _resources.c.tenant == tenant,
            _resources.c.resource_type == resource_type,
            _resources.c.logical_id == logical_id,
        )
    ).one()
    version = row.version + 1
    conn.execute(
        sa.update(_resources)
        .where(_resources.c.pk == row.pk)
        .values(
            version=version,
            content=content,
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
            last_updated=now,
        )
    )
    conn.execute(
        sa.insert(_versions).values(
            resource_pk=row.pk, version=version, content=content, deleted=False,
            recorded_at=now, source="ehr", submission_id=None, provenance=provenance,
        )
    )  # fmt: skip
