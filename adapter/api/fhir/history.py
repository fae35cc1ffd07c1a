"""The type-level `_history` Bundle: one page of versions, newest first, with paging links.

An entry is a version as `PUT` (201 for a first version or a revival, 200 otherwise) or,
for a deletion, `DELETE` without a resource, as in instance history.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from adapter.api.fhir.bundle import Paged, PageRequest, base_url, page_links, token_key
from adapter.api.fhir.common import AnswerValue, instant, stored_fragment
from adapter.api.fhir.paging import PagingTokens
from adapter.errors import RequestRefused
from adapter.store.engine import Connection
from adapter.store.history import HistoryPosition, HistoryRow, history_page, history_total
from adapter.store.search import Snapshot, sort_value
from mappings.jsontypes import JsonValue


def history_bundle(
    conn: Connection,
    request: Request,
    tokens: PagingTokens,
    of: tuple[str, str],
    bounds: tuple[Snapshot, datetime | None, int],
    paging: PageRequest,
) -> dict[str, AnswerValue]:
    """The page of `of` = (tenant, type)'s history that `paging` asks for."""
    tenant, resource_type = of
    snapshot, since, count = bounds
    position = _position(paging)
    # `_count=0`: the total only, no entry and no `next`.
    rows = (
        history_page(conn, tenant, resource_type, (snapshot, since), count, position)
        if count
        else []
    )
    paged = Paged.of(rows, count, paging.cursor)
    links = page_links(request, tokens, paged, _key, (paging.digest, snapshot))
    base = f"{base_url(request)}/{resource_type}"
    bundle: dict[str, AnswerValue] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(snapshot.at)},
        "type": "history",
        "total": history_total(conn, tenant, resource_type, (snapshot, since)),
        "link": links,
    }
    if paged.rows:
        bundle["entry"] = [_entry(base, resource_type, row) for row in paged.rows]
    return bundle


def _position(paging: PageRequest) -> HistoryPosition | None:
    cursor = paging.cursor
    if cursor is None:
        return None
    if not (isinstance(cursor.sort, list) and len(cursor.sort) == 2):
        raise RequestRefused("_cursor is not a paging token of a history")
    at, version = cursor.sort
    return HistoryPosition(sort_value(at), cursor.pk, int(version), cursor.forward)


def _key(row: HistoryRow) -> tuple[object, int]:
    return [token_key(row.recorded_at), row.version], row.resource_pk


def _entry(base: str, resource_type: str, row: HistoryRow) -> AnswerValue:
    reference = f"{resource_type}/{row.logical_id}"
    response: dict[str, JsonValue] = {
        "etag": f'W/"{row.version}"',
        "lastModified": instant(row.recorded_at),
    }
    if row.deleted:
        return {
            "fullUrl": f"{base}/{row.logical_id}",
            "request": {"method": "DELETE", "url": reference},
            "response": {"status": "204 No Content", **response},
        }
    return {
        "fullUrl": f"{base}/{row.logical_id}",
        "resource": stored_fragment(row.content, row.version, row.recorded_at),
        "request": {"method": "PUT", "url": reference},
        "response": {"status": "201 Created" if row.version == 1 else "200 OK", **response},
    }
