"""The Bundle an outbox entry sends, built from the store's CURRENT content at send time.

Building late means a burst of changes to one encounter goes out once, as its newest
state. Each entry of the Bundle is:

- a resource the EHR has not acknowledged yet: `PUT Type?identifier=system|value`
  (conditional update: created once, however often it is sent);
- a resource the EHR already holds: `PUT Type/<EHR id>` with `If-Match` on the version
  we last saw, so an edit made on the EHR side since then is a 412 conflict to reconcile,
  never silently overwritten;
- a tombstone: `DELETE Type?identifier=system|value`.

References between entries become `urn:uuid:` fullUrls; references to resources outside
the Bundle become `Type/<EHR id>` when we know it, else conditional references. A resource
referred to that the EHR has never acknowledged travels in the Bundle too: since the
Bundle is built from current content, a record moved to a newer encounter refers to an
Encounter that only a later entry brings, and a conditional reference to it would fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from adapter.store.delivery_rows import Stored, load
from adapter.store.engine import Connection
from adapter.store.references import REFERENCE, referenced_keys
from mappings.common.bundle import WRITTEN_BY_ID, conditional_url
from mappings.jsontypes import JsonObject, JsonValue, Resource

__all__ = ["Payload", "Stored", "as_ehr_would_hold", "build", "ehr_references", "load"]


@dataclass(frozen=True)
class Payload:
    bundle: JsonObject
    items: tuple[Stored, ...]
    """The store rows behind the Bundle's entries, in entry order."""


def build(conn: Connection, tenant: str, keys: Sequence[str]) -> Payload:
    """The transaction Bundle that brings the EHR up to date for `keys`."""
    items = load(conn, tenant, keys)
    outside = _with_unsent_targets(conn, tenant, items)
    in_bundle = {item.key: item.identity.urn for item in items if not item.deleted}
    targets = {**outside, **in_bundle}
    entries: list[JsonValue] = [_entry(item, targets) for item in items]
    bundle: JsonObject = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Payload(bundle, tuple(items))


def _entry(item: Stored, targets: dict[str, str]) -> JsonObject:
    if item.deleted:
        return {"request": {"method": "DELETE", "url": conditional_url(item.identity)}}
    body = orjson.loads(_rewrite(item.text, targets))
    if item.identity.resource_type not in WRITTEN_BY_ID:
        body.pop("id", None)  # the server assigns its own; we match on identifier
    request: JsonObject = {"method": "PUT", "url": conditional_url(item.identity)}
    if item.ehr_id is not None and item.ehr_version is not None:
        request = {
            "method": "PUT",
            "url": f"{item.identity.resource_type}/{item.ehr_id}",
            "ifMatch": f'W/"{item.ehr_version}"',
        }
        body["id"] = item.ehr_id
    return {"fullUrl": item.identity.urn, "resource": body, "request": request}


def _rewrite(text: str, targets: Mapping[str, str]) -> str:
    def swap(match: re.Match[str]) -> str:
        key = f"{match.group(1)}/{match.group(2)}"
        return f'"reference":"{targets.get(key, key)}"'

    return REFERENCE.sub(swap, text)


def _with_unsent_targets(conn: Connection, tenant: str, items: list[Stored]) -> dict[str, str]:
    """Add to `items` what they refer to that the EHR never acknowledged (and what that
    refers to, in turn); answer where the other references should point on the EHR."""
    out: dict[str, str] = {}
    seen = {item.key for item in items}
    fresh: Sequence[Stored] = items
    while fresh:
        wanted = {
            key for item in fresh if not item.deleted for key in referenced_keys(item.text)
        } - seen
        seen |= wanted
        unsent: list[Stored] = []
        for other in load(conn, tenant, sorted(wanted)):
            if other.ehr_id is not None:
                out[other.key] = f"{other.identity.resource_type}/{other.ehr_id}"
            elif other.deleted:
                out[other.key] = conditional_url(other.identity)
            else:
                unsent.append(other)
        items.extend(unsent)
        fresh = unsent
    return out


def as_ehr_would_hold(
    conn: Connection, tenant: str, item: Stored, targets: Mapping[str, str] | None = None
) -> Resource:
    """`item`'s content with its references to our resources turned into the EHR's ids (where
    known), so it compares field by field with the EHR's copy (`adapter push --dry-run`,
    `adapter reconcile`). `targets` (from `ehr_references`) saves the look-up when many
    items are compared at once."""
    if targets is None:
        targets = ehr_references(conn, tenant, [item])
    view = orjson.loads(_rewrite(item.text, targets))
    assert isinstance(view, dict)
    return view


def ehr_references(conn: Connection, tenant: str, items: Sequence[Stored]) -> dict[str, str]:
    """`Type/<EHR id>` of each of our resources that `items` refer to and the EHR holds."""
    keys = sorted({key for item in items for key in referenced_keys(item.text)})
    return {
        other.key: f"{other.identity.resource_type}/{other.ehr_id}"
        for other in load(conn, tenant, keys)
        if other.ehr_id is not None
    }
