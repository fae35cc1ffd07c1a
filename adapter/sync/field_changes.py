"""Field-level differences between two versions of a resource, for operators' eyes.

Server-managed elements (`id`, `meta`, `text`) are ignored: they differ between any two
servers without anyone having changed the record.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from mappings.jsontypes import JsonObject, JsonValue

IGNORED = frozenset({"id", "meta", "text"})


@dataclass(frozen=True)
class Change:
    path: str
    before: JsonValue | None
    after: JsonValue | None

    def __str__(self) -> str:
        if self.before is None:
            return f"+ {self.path}: {_short(self.after)}"
        if self.after is None:
            return f"- {self.path}: {_short(self.before)}"
        return f"~ {self.path}: {_short(self.before)} -> {_short(self.after)}"


def diff(before: JsonObject | None, after: JsonObject | None) -> list[Change]:
    """What turns `before` into `after`, element by element (list items by position)."""
    old = {k: v for k, v in (before or {}).items() if k not in IGNORED}
    new = {k: v for k, v in (after or {}).items() if k not in IGNORED}
    return _walk(old, new, "")


def _walk(old: JsonValue | None, new: JsonValue | None, path: str) -> list[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in [*old, *(k for k in new if k not in old)]:
            changes += _walk(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            a = old[index] if index < len(old) else None
            b = new[index] if index < len(new) else None
            changes += _walk(a, b, f"{path}[{index}]")
        return changes
    return [] if old == new else [Change(path, old, new)]


def _short(value: JsonValue | None, limit: int = 80) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
