"""R4 search parameters: the search index rebuilt by R4's names and meanings

The index now holds each type's parameters as R4 defines them (adapter.store.search_
parameters): `context` and `effective-time` on MedicationAdministration, `authoredon` (no
longer `date`) on MedicationRequest, `recorded-date` on Condition, `recorded` on
Provenance, Patient demographics as strings, references' identifiers, ... Rows written
under the old table would answer the new names wrongly (or not at all), so every current
resource is indexed again, in batches by primary key. The table's columns are unchanged.

Downgrade keeps the rows: the old code reads the names it knows among them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:20:00.000000
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

from adapter.store.bulk import insert_many
from adapter.store.schema import search_index
from adapter.store.search_index import INDEX_COLUMNS, index_values

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)
# Resources read (and their rows written) per batch: bounded memory on a large store.
BATCH = 500


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM search_index"))
    after, indexed = 0, 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT pk, tenant, resource_type, content FROM resources "
                "WHERE deleted = :deleted AND pk > :after ORDER BY pk LIMIT :batch"
            ),
            {"deleted": False, "after": after, "batch": BATCH},
        ).fetchall()
        if not rows:
            break
        values = [
            value
            for pk, tenant, resource_type, content in rows
            for value in index_values(pk, tenant, resource_type, json.loads(content))
        ]
        insert_many(conn, search_index, INDEX_COLUMNS, values)
        after, indexed = rows[-1][0], indexed + len(rows)
    log.info("migration 0011: %d resources indexed again", indexed)


def downgrade() -> None:
    """Nothing to undo: the table is the same (see the module doc)."""
