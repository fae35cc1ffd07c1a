"""Test helpers: read mapped JSON by path, checking each step's kind on the way.

A step of the wrong kind (a key into a list, an index into an object, a string where an
object was expected) fails the test with an AssertionError naming the path, and a missing
key or index still raises KeyError or IndexError, as plain indexing would.
"""

from __future__ import annotations

from mappings.jsontypes import JsonObject, JsonValue


def at(value: JsonValue, *path: str | int) -> JsonValue:
    """The value at `path`: strings are object keys, ints are list indexes."""
    for depth, step in enumerate(path):
        where = path[: depth + 1]
        if isinstance(step, str):
            assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
            value = value[step]
        else:
            assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
            value = value[step]
    return value


def obj_at(value: JsonValue, *path: str | int) -> JsonObject:
    """The JSON object at `path`."""
    found = at(value, *path)
    assert isinstance(found, dict), f"{path}: expected an object, got {found!r}"
    return found


def list_at(value: JsonValue, *path: str | int) -> list[JsonValue]:
    """The JSON list at `path`."""
    found = at(value, *path)
    assert isinstance(found, list), f"{path}: expected a list, got {found!r}"
    return found


def objs_at(value: JsonValue, *path: str | int) -> list[JsonObject]:
    """The JSON list at `path`, every item of which must be an object."""
    found = list_at(value, *path)
    items = [item for item in found if isinstance(item, dict)]
    assert len(items) == len(found), f"{path}: expected only objects, got {found!r}"
    return items


def str_at(value: JsonValue, *path: str | int) -> str:
    """The JSON string at `path`."""
    found = at(value, *path)
    assert isinstance(found, str), f"{path}: expected a string, got {found!r}"
    return found
