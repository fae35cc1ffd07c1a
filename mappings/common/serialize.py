"""Canonical JSON bytes for mapped resources: same input, byte-identical output."""

from __future__ import annotations

import orjson

from mappings.jsontypes import JsonValue


def dumps(value: JsonValue, *, pretty: bool = False) -> bytes:
    """Compact UTF-8 JSON (or indented with `pretty`), keys in insertion order."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, option=option)
