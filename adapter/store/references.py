"""References between our stored resources, read straight from their stored JSON text.

The store keeps each resource as compact JSON written by `mappings`, where a reference to
another of our resources is `"reference":"Type/logical-id"`; reading that text with one
pattern is far cheaper than parsing it, and is exact for what we write.
"""

from __future__ import annotations

import re

REFERENCE = re.compile(r'"reference":"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})"')


def referenced_keys(text: str) -> set[str]:
    """The `Type/logical-id` keys a stored resource refers to."""
    return {f"{m.group(1)}/{m.group(2)}" for m in REFERENCE.finditer(text)}
