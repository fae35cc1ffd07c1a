"""References between our stored resources, read straight from their stored JSON text.

The store keeps each resource as compact JSON written by `mappings`, where a reference to
another of our resources is `"reference":"Type/logical-id"`; reading that text with one
pattern is far cheaper than parsing it, and is exact for what we write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, and_

from adapter.store.schema import resources

REFERENCE = re.compile(r'"reference":"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})"')


def referenced_keys(text: str) -> set[str]:
    """The `Type/logical-id` keys a stored resource refers to."""
    return {f"{m.group(1)}/{m.group(2)}" for m in REFERENCE.finditer(text)}


def keyed(tenant: str, keys: Iterable[str]) -> ColumnElement[bool]:
    """Where-clause for the `resources` rows of `keys` (`Type/logical-id`) of a tenant.

    Written as two IN lists, not a row-value IN: SQLite plans `(type, id) IN (VALUES ...)`
    as a scan of the tenant's every row, while this form uses the unique index on
    (tenant, type, logical id). It can match a type with another key's id: callers keep
    only the keys they asked for (`key_of`).
    """
    pairs = [key.split("/", 1) for key in keys]
    return and_(
        resources.c.tenant == tenant,
        resources.c.resource_type.in_({kind for kind, _ in pairs}),
        resources.c.logical_id.in_({logical_id for _, logical_id in pairs}),
    )


def key_of(row: Row[*tuple[Any, ...]]) -> str:
    """A `resources` row's key, `Type/logical-id`."""
    return f"{row.resource_type}/{row.logical_id}"
