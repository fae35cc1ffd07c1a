"""Writing to the store what the pull from the EHR writes (issue 6's shared brief), for tests
of what reads it: an EHR's edit of one of ours, an EHR's deletion, a resource it created."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from adapter.store.engine import write_transaction
from adapter.store.schema import resource_versions, resources
from mappings.common.identity import Identity

EHR_BASE = "http://ehr.example.org/fhir"
EHR = "ehr"


def imported(
    engine: Engine,
    tenant: str,
    mrn: str,
    content: dict[str, Any],
    ehr_id: str,
    at: datetime,
) -> str:
    """Store `content` as a resource the EHR created about patient `mrn`; its reference."""
    resource_type = content["resourceType"]
    ident = Identity(resource_type, EHR_BASE, f"{resource_type}/{ehr_id}")
    text = json.dumps(content | {"id": ident.id})
    with write_transaction(engine) as conn:
        pk = conn.execute(
            insert(resources)
            .values(
                tenant=tenant,
                resource_type=resource_type,
                logical_id=ident.id,
                identifier_system=ident.system,
                identifier_value=ident.value,
                patient_key=mrn,
                scope_key=None,
                version=1,
                content_hash=_digest(text),
                content=text,
                deleted=False,
                last_updated=at,
                ehr_id=ehr_id,
                ehr_version="1",
            )
            .returning(resources.c.pk)
        ).scalar_one()
        _version(conn, pk, 1, text, at, deleted=False)
    return ident.reference


def edited(
    engine: Engine,
    tenant: str,
    reference: str,
    change: Callable[[dict[str, Any]], None],
    at: datetime,
) -> dict[str, Any]:
    """Store the EHR's edit of `reference` (`change` applied to its content); the content."""
    return _new_version(engine, tenant, reference, change, at, deleted=False)


def deleted(engine: Engine, tenant: str, reference: str, at: datetime) -> None:
    """Tombstone `reference` as the pull does after a deletion on the EHR's side."""
    _new_version(engine, tenant, reference, lambda _: None, at, deleted=True)


def _new_version(
    engine: Engine,
    tenant: str,
    reference: str,
    change: Callable[[dict[str, Any]], None],
    at: datetime,
    *,
    deleted: bool,
) -> dict[str, Any]:
    resource_type, _, logical_id = reference.partition("/")
    key = (
        (resources.c.tenant == tenant)
        & (resources.c.resource_type == resource_type)
        & (resources.c.logical_id == logical_id)
    )
    with write_transaction(engine) as conn:
        row = conn.execute(select(resources).where(key)).one()
        content: dict[str, Any] = json.loads(row.content)
        content.pop("meta", None)
        change(content)
        text = json.dumps(content)
        values = {"content": text, "content_hash": _digest(text), "deleted": deleted}
        version = row.version + 1
        conn.execute(
            update(resources).where(key).values(version=version, last_updated=at, **values)
        )
        _version(conn, row.pk, version, text, at, deleted=deleted)
    return content


def _version(
    conn: Connection, pk: int, version: int, text: str, at: datetime, *, deleted: bool
) -> None:
    conn.execute(
        insert(resource_versions).values(
            resource_pk=pk,
            version=version,
            content=text,
            deleted=deleted,
            recorded_at=at,
            source=EHR,
        )
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
