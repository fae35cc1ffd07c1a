"""What a dead letter would send now, against what the EHR holds: per resource of the
Bundle the push would build (`adapter.sync.payload.build`, from the store's current
content), how it would be sent and which element paths it would add, remove or change on
the EHR's current version, as `adapter push --dry-run` compares them.

Paths and ids only: the values on either side are never kept, so no name, MRN or clinical
value reaches the page. A conditional request is shown as `by identifier`, never with the
identifier's value (an MRN, for a Patient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from adapter.ehr.client import FetchedResource
from adapter.errors import EhrError, EhrNotFound
from adapter.store.engine import Connection
from adapter.sync.field_changes import diff
from adapter.sync.push.payload import Stored, as_ehr_would_hold, build, ehr_references
from mappings.jsontypes import JsonObject

Change = Literal["added", "removed", "changed"]


class EhrReader(Protocol):
    def read(self, resource_type: str, resource_id: str) -> FetchedResource: ...

    def conditional_read_by_identifier(
        self, resource_type: str, system: str, value: str
    ) -> FetchedResource | None: ...


@dataclass(frozen=True)
class PathChange:
    path: str
    change: Change


@dataclass(frozen=True)
class ResourceDiff:
    key: str
    """Our resource, `Type/logical-id`."""
    request: str
    """How the push would send it: `PUT by identifier`, `PUT Patient/<EHR id>`, ..."""
    verdict: str
    changes: tuple[PathChange, ...] = ()


@dataclass(frozen=True)
class Planned:
    """One resource of the Bundle, as it would be sent (read from the store)."""

    item: Stored
    ours: JsonObject | None
    """Its content with references as the EHR would hold them; None for a deletion."""


def planned(conn: Connection, tenant: str, keys: Sequence[str]) -> list[Planned]:
    """The resources the push would send for an entry of `keys`, in the Bundle's order."""
    items = build(conn, tenant, keys).items
    targets = ehr_references(conn, tenant, [item for item in items if not item.deleted])
    return [
        Planned(item, None if item.deleted else as_ehr_would_hold(conn, tenant, item, targets))
        for item in items
    ]


def compared(plan: Sequence[Planned], ehr: EhrReader | None) -> list[ResourceDiff]:
    """Each planned resource against the EHR's current version (`ehr` None: not configured)."""
    return [_compared_one(one, ehr) for one in plan]


def _compared_one(one: Planned, ehr: EhrReader | None) -> ResourceDiff:
    key, request = one.item.key, _request(one.item)
    if ehr is None:
        return ResourceDiff(key, request, "no EHR is configured to compare with")
    try:
        theirs = _theirs(one.item, ehr)
    except EhrError as exc:
        return ResourceDiff(key, request, f"cannot read the EHR's version ({type(exc).__name__})")
    if one.ours is None:
        verdict = "would be deleted" if theirs is not None else "already absent on the EHR"
        return ResourceDiff(key, request, verdict)
    if theirs is None:
        paths = tuple(PathChange(c.path, "added") for c in diff(None, one.ours))
        return ResourceDiff(key, request, "new on the EHR", paths)
    changes = tuple(PathChange(c.path, _kind(c.before, c.after)) for c in diff(theirs, one.ours))
    verdict = f"{len(changes)} element paths differ" if changes else "the same as the EHR's"
    return ResourceDiff(key, request, verdict, changes)


def _theirs(item: Stored, ehr: EhrReader) -> JsonObject | None:
    kind = item.identity.resource_type
    if item.ehr_id is not None:
        try:
            return ehr.read(kind, item.ehr_id).resource
        except EhrNotFound:
            return None
    found = ehr.conditional_read_by_identifier(kind, item.identity.system, item.identity.value)
    return None if found is None else found.resource


def _request(item: Stored) -> str:
    kind = item.identity.resource_type
    if item.deleted:
        return f"DELETE {kind} by identifier"
    if item.ehr_id is not None and item.ehr_version is not None:
        return f"PUT {kind}/{item.ehr_id} if still version {item.ehr_version}"
    return f"PUT {kind} by identifier"


def _kind(before: object, after: object) -> Change:
    if before is None:
        return "added"
    return "removed" if after is None else "changed"
