"""Turning a transaction's entries into batch entries that stand on their own.

A batch entry cannot point at another entry's `urn:uuid:` fullUrl, so each such reference
becomes the conditional reference `Type?identifier=system|value` of the entry it named
(its conditional `request.url`, which `mappings.common.bundle` built the same way). The entries
are also put in dependency order, referenced ones first (`adapter.ehr.ordering`): servers
such as HAPI process a batch in order, and a conditional reference only resolves once its
target exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapter.ehr.ordering import dependency_order
from mappings.common.bundle import conditional_url
from mappings.common.identity import Identity
from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject, JsonValue

URN_PREFIX = "urn:uuid:"


def request_of(entry: JsonObject) -> JsonObject:
    return obj(entry.get("request"))


def entry_resource_type(entry: JsonObject) -> str:
    """The entry's resource type, from its request URL (`Patient?identifier=...` -> Patient)."""
    url = str_field(request_of(entry), "url") or ""
    return url.split("?", 1)[0].split("/", 1)[0] or "?"


def batch_entries(entries: Sequence[JsonObject]) -> list[tuple[int, JsonObject]]:
    """`entries` (with their index) rewritten for a batch, referenced entries first.

    Raises `ValueError` when an entry referenced by `urn:uuid:` cannot be named otherwise:
    that is a Bundle we built wrongly, not something the EHR did.
    """
    urns = {url: i for i, e in enumerate(entries) if (url := urn_of(e)) is not None}
    targets = {url: standalone_reference(entries[i]) for url, i in urns.items()}
    order = dependency_order([referenced(e, urns) for e in entries])
    return [(i, rewritten(entries[i], targets)) for i in order]


def urn_of(entry: JsonObject) -> str | None:
    url = str_field(entry, "fullUrl")
    return url if url is not None and url.startswith(URN_PREFIX) else None


def standalone_reference(entry: JsonObject) -> str | None:
    request = request_of(entry)
    url, method = str_field(request, "url") or "", str_field(request, "method")
    if "?" in url:
        return url
    if method == "PUT" and url.count("/") == 1:
        return url
    if_none_exist = str_field(request, "ifNoneExist")
    if method == "POST" and if_none_exist:
        return f"{url}?{if_none_exist}"
    resource = obj(entry.get("resource"))
    resource_type = str_field(resource, "resourceType")
    found = resource.get("identifier")
    # A list in most types; a single Identifier in a few (QuestionnaireResponse, ...).
    for identifier in [found] if isinstance(found, dict) else objs(found):
        system, value = str_field(identifier, "system"), str_field(identifier, "value")
        if resource_type and system and value:
            return conditional_url(Identity(resource_type, system, value))
    return None


def referenced(entry: JsonObject, urns: dict[str, int]) -> set[int]:
    """Indexes of the other entries that `entry`'s resource refers to."""
    found: set[int] = set()
    stack: list[JsonValue] = [entry.get("resource")]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            reference = value.get("reference")
            if isinstance(reference, str) and reference in urns:
                found.add(urns[reference])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def rewritten(entry: JsonObject, targets: dict[str, str | None]) -> JsonObject:
    out = dict(entry)
    if "resource" in entry:
        out["resource"] = _rewrite_value(entry["resource"], targets)
    return out


def _rewrite_value(value: JsonValue, targets: dict[str, str | None]) -> JsonValue:
    if isinstance(value, dict):
        return {k: _rewrite_reference(k, v, targets) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_value(item, targets) for item in value]
    return value


def _rewrite_reference(key: str, value: JsonValue, targets: dict[str, str | None]) -> JsonValue:
    if key != "reference" or not isinstance(value, str) or value not in targets:
        return _rewrite_value(value, targets)
    target = targets[value]
    if target is None:
        raise ValueError("a batch entry refers to an entry that has no identifier or URL")
    return target
