"""Our resources as a delivery sends them: the current row of each key (`Type/logical-id`),
with the identity it is matched on and what the EHR calls it, read at send time.

`adapter.sync.push.payload` builds the push's Bundles from them; `adapter reconcile` compares
them with the EHR's copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import orjson
from sqlalchemy import Connection, Row, select

from adapter.store.references import key_of, keyed
from adapter.store.schema import resources
from mappings.common.identity import Identity
from mappings.jsontypes import Resource


@dataclass(frozen=True)
class Stored:
    """One resource of an outbox entry as the store holds it now.

    `text` is the stored JSON: references are rewritten on it directly, and it is parsed
    once, into the Bundle entry; `content` parses it only for those who need the object.
    """

    key: str
    identity: Identity
    text: str
    deleted: bool
    ehr_id: str | None
    ehr_version: str | None

    @cached_property
    def content(self) -> Resource:
        parsed = orjson.loads(self.text)
        assert isinstance(parsed, dict)
        return parsed


def load(conn: Connection, tenant: str, keys: Sequence[str]) -> list[Stored]:
    """The current rows for `keys` (`Type/logical-id`), in the order given."""
    if not keys:
        return []
    rows = conn.execute(select(resources).where(keyed(tenant, keys))).all()
    found = {key_of(r): r for r in rows}
    return [_stored(found[key]) for key in keys if key in found]


def _stored(row: Row[tuple[object, ...]]) -> Stored:
    fields = row._mapping
    ident = Identity(
        str(fields["resource_type"]),
        str(fields["identifier_system"]),
        str(fields["identifier_value"]),
    )
    return Stored(
        key=f"{ident.resource_type}/{fields['logical_id']}",
        identity=ident,
        text=str(fields["content"]),
        deleted=bool(fields["deleted"]),
        ehr_id=_text(fields["ehr_id"]),
        ehr_version=_text(fields["ehr_version"]),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
