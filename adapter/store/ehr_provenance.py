"""The pull's lineage as resources: a Provenance per version the pull wrote, on `/fhir`.

Every version the pull takes from the EHR (an edit, an import, a deletion, a conflict kept
as the EHR's) has a FHIR Provenance saying which EHR version it is and when it was taken.
It is kept beside the version (`resource_versions.provenance`) and is also a resource of
the store, so a reader of `/fhir` finds it: read by id, `Provenance?target=<Type/id>`,
`_revinclude=Provenance:target`, `$everything`. Its target is our versioned reference
(`Type/id/_history/n`; the search index drops the version). It carries the security labels
of everything we serve, belongs to the target's patient, and is never pushed: its
identifier system (`LINEAGE_SYSTEM`) is outside every namespace the push and the
reconciliation compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from adapter.store.accept import sha256
from adapter.store.bulk import insert_many
from adapter.store.schema import resource_versions, resources, search_index
from adapter.store.search_index import INDEX_COLUMNS, index_values
from mappings.common.builders import labelled
from mappings.common.identity import Identity
from mappings.common.narrative import with_narrative
from mappings.common.serialize import dumps
from mappings.context import SecurityLabels
from mappings.jsontypes import JsonObject, Resource

LINEAGE_SYSTEM = "urn:ketamine-fhir-adapter:ehr-version"
SOURCE_EHR = "ehr"
_RESOURCE_COLUMNS = (
    "tenant", "resource_type", "logical_id", "identifier_system", "identifier_value",
    "patient_key", "scope_key", "version", "content_hash", "content", "deleted",
    "last_updated",
)  # fmt: skip
_VERSION_COLUMNS = ("resource_pk", "version", "content", "deleted", "recorded_at", "source")
_KEYS = select(resources.c.logical_id, resources.c.pk).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == "Provenance",
    resources.c.logical_id.in_(bindparam("ids", expanding=True)),
)


@dataclass(frozen=True)
class Lineage:
    """The Provenance of our `version` of `target` (`Type/logical id`)."""

    target: str
    version: int
    patient_key: str | None
    provenance: JsonObject
    """What the pull recorded (`resource_versions.provenance`), as parsed JSON."""

    @property
    def identity(self) -> Identity:
        return Identity("Provenance", LINEAGE_SYSTEM, f"{self.target}/_history/{self.version}")

    def index_rows(self, pk: int, tenant: str) -> list[tuple[Any, ...]]:
        """Its search index rows, as of any Provenance (agent, entity and target alike)."""
        return index_values(pk, tenant, "Provenance", self.provenance)

    def resource(self, security: SecurityLabels) -> Resource:
        """The Provenance as served: our id, our labels, the pull's content, a narrative."""
        head: Resource = {"resourceType": "Provenance", "id": self.identity.id, "meta": None}
        head.update(self.provenance)  # keeps the places above, takes the pull's values
        head["resourceType"], head["id"] = "Provenance", self.identity.id
        return with_narrative(labelled(head, security))


def insert_lineage(
    conn: Connection,
    tenant: str,
    found: Sequence[Lineage],
    security: SecurityLabels,
    now: datetime,
) -> None:
    """Store the Provenances of `found` (new versions) as resources, with their index rows:
    a few statements of many rows each (a first pull imports thousands a page)."""
    if not found:
        return
    contents = [item.resource(security) for item in found]
    texts = [dumps(content).decode() for content in contents]
    ids = [str(content["id"]) for content in contents]
    rows = [
        (tenant, "Provenance", logical_id, LINEAGE_SYSTEM, item.identity.value, item.patient_key,
         None, 1, sha256(text.encode()), text, False, now)
        for logical_id, item, text in zip(ids, found, texts, strict=True)
    ]  # fmt: skip
    insert_many(conn, resources, _RESOURCE_COLUMNS, rows)
    keyed = {
        str(logical_id): int(pk)
        for logical_id, pk in conn.execute(_KEYS, {"tenant": tenant, "ids": ids})
    }
    pks = [int(keyed[logical_id]) for logical_id in ids]
    versions = [(pk, 1, text, False, now, SOURCE_EHR) for pk, text in zip(pks, texts, strict=True)]
    insert_many(conn, resource_versions, _VERSION_COLUMNS, versions)
    index = [
        row for pk, item in zip(pks, found, strict=True) for row in item.index_rows(pk, tenant)
    ]
    insert_many(conn, search_index, INDEX_COLUMNS, index)
