"""Cutting a large transaction into several smaller ones the EHR can take.

A server checks each conditional entry of a transaction against the others (HAPI FHIR
compares every pair: a 3,000-entry Bundle kept its 1 GB sandbox busy for many minutes),
so a Bundle past `ADAPTER_EHR_MAX_BUNDLE_ENTRIES` goes as several transactions in
dependency order. Entries that refer to each other in a cycle (an Encounter and its
diagnosis Condition) always travel together; a chunk refers to entries of earlier chunks
by their conditional reference (`Type?identifier=system|value`, as a batch does), since
an `urn:uuid:` only means something inside its own Bundle. Every entry is a conditional
update or delete, so sending a chunk again after a later one failed changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapter.ehr.batch import referenced, rewritten, standalone_reference, urn_of
from adapter.ehr.ordering import dependency_groups
from mappings.jsontypes import JsonObject

Chunk = list[tuple[int, JsonObject]]


def transaction_chunks(entries: Sequence[JsonObject], max_entries: int) -> list[Chunk]:
    """`entries` (with their index) as chunks of at most `max_entries`, referenced first.

    A group of entries in a reference cycle larger than `max_entries` makes a chunk of its
    own. Raises `ValueError` when an entry referred to across chunks has no identifier or
    URL to be named by: a Bundle we built wrongly.
    """
    urns = {url: i for i, e in enumerate(entries) if (url := urn_of(e)) is not None}
    groups = dependency_groups([referenced(e, urns) for e in entries])
    chunks: list[list[int]] = []
    for group in groups:
        if chunks and len(chunks[-1]) + len(group) <= max_entries:
            chunks[-1].extend(group)
        else:
            chunks.append(list(group))
    chunk_of = {i: n for n, chunk in enumerate(chunks) for i in chunk}
    out: list[Chunk] = []
    for n, chunk in enumerate(chunks):
        earlier = {url: i for url, i in urns.items() if chunk_of[i] < n}
        targets = {url: standalone_reference(entries[i]) for url, i in earlier.items()}
        out.append([(i, rewritten(entries[i], targets)) for i in sorted(chunk)])
    return out
