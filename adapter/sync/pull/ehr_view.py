"""The EHR's copy of a resource, in our terms: its references pointed at our logical ids.

What the pull stores must read like everything else in the store: `"reference":"Type/<our
id>"` for the resources we hold, so search, `$everything` and the push (which rewrites our
ids to the EHR's again) work on it unchanged. A reference to something we do not hold
becomes absolute, to the EHR, so it never dangles on our own FHIR face. The server-managed
`meta` is dropped (the store keeps the EHR's version beside the content) but for its
security labels, which are content (the merge adds ours to them), and `id` is ours.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from mappings.jsontypes import JsonObject, JsonValue, Resource

# Elements that differ between two servers' copies without anyone having changed the record.
SERVER_MANAGED = frozenset({"id", "meta", "text"})

# `Type/id`, optionally `/_history/n`, relative or under a base URL.
_REFERENCE = re.compile(
    r"^(?:(?P<base>https?://.+)/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


@dataclass(frozen=True)
class EhrRef:
    resource_type: str
    ehr_id: str


# A page names the same few patients and encounters in every resource: each reference is
# read two or three times per version merged.
@functools.lru_cache(maxsize=4096)
def parse_reference(reference: str, ehr_base: str) -> EhrRef | None:
    """The EHR resource a reference names, if it names one on this EHR."""
    match = _REFERENCE.match(reference)
    if match is None:
        return None
    base = match.group("base")
    if base is not None and base.rstrip("/") != ehr_base.rstrip("/"):
        return None
    return EhrRef(match.group("type"), match.group("id"))


def holders(resource: Resource) -> list[JsonObject]:
    """The objects in `resource`, at any depth, that carry a `reference` string."""
    found: list[JsonObject] = []
    stack: list[JsonObject | list[JsonValue]] = [resource]
    # Called on every version a pull reads: exact type tests (parsed JSON holds plain dicts
    # and lists only) and no generators, about twice as fast as isinstance and extend.
    while stack:
        node = stack.pop()
        if type(node) is dict:
            if type(node.get("reference")) is str:
                found.append(node)
            children: Iterable[JsonValue] = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append(child)  # type: ignore[arg-type]
    return found


def localise(
    resource: Resource,
    referring: list[JsonObject],
    logical_id: str,
    ours: Mapping[EhrRef, str],
    ehr_base: str,
) -> Resource:
    """`to_local` in place, given `resource`'s `holders`: for a copy nothing else uses (a
    page the pull has just read), one walk of the resource instead of two."""
    for holder in referring:
        holder["reference"] = _local_reference(str(holder["reference"]), ours, ehr_base)
    meta = resource.pop("meta", None)
    resource["id"] = logical_id
    labels = meta.get("security") if isinstance(meta, dict) else None
    if isinstance(labels, list) and labels:
        resource["meta"] = {"security": labels}
    return {"resourceType": resource.pop("resourceType"), **resource}


def to_local(
    resource: Resource, logical_id: str, ours: Mapping[EhrRef, str], ehr_base: str
) -> Resource:
    """`resource` (the EHR's copy) as we store it: our id, our references, no meta."""
    copy = orjson.loads(orjson.dumps(resource))
    return localise(copy, holders(copy), logical_id, ours, ehr_base)


def _local_reference(text: str, ours: Mapping[EhrRef, str], ehr_base: str) -> str:
    ref = parse_reference(text, ehr_base)
    if ref is None:
        return text  # contained (#id), urn:, or another server's: as the EHR wrote it
    local = ours.get(ref)
    if local is not None:
        return f"{ref.resource_type}/{local}"
    return f"{ehr_base.rstrip('/')}/{ref.resource_type}/{ref.ehr_id}"


def content_digest(resource: Resource) -> str:
    """A hash of what a resource says, server-managed elements aside, key order aside."""
    kept = {k: v for k, v in resource.items() if k not in SERVER_MANAGED}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()
