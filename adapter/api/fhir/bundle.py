"""Bundles of pages: entries, `self`/`next`/`previous` links with signed paging tokens.

A page fetched from the store holds one row more than asked for when there is more in
the direction it was read; `Paged` trims it and says which links the page gets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar, cast
from urllib.parse import urlencode

from fastapi import Depends, Request

from adapter.api.fhir.common import AnswerValue, stored_fragment
from adapter.api.fhir.paging import CURSOR_PARAMETER, Cursor, PagingTokens, query_digest
from adapter.config import Settings
from adapter.errors import RequestRefused
from adapter.store.search import Found, Snapshot, sort_value
from mappings.jsontypes import JsonValue

Row = TypeVar("Row")


@dataclass(frozen=True)
class Paged(Generic[Row]):
    """One page of rows, and whether pages lie before and after it."""

    rows: Sequence[Row]
    has_previous: bool
    has_next: bool

    @classmethod
    def of(cls, rows: Sequence[Row], count: int, cursor: Cursor | None) -> Paged[Row]:
        if cursor is None or cursor.forward:
            return cls(rows[:count], cursor is not None, len(rows) > count)
        return cls(rows[-count:] if count else [], len(rows) > count, True)


async def paging_tokens(request: Request) -> PagingTokens:
    """The app's token signer, made on first use from `ADAPTER_PAGING_SECRET`."""
    state = request.app.state
    if getattr(state, "paging_tokens", None) is None:
        secret = cast(Settings, state.settings).paging_secret
        state.paging_tokens = PagingTokens(secret.encode() if secret else os.urandom(32))
    return cast(PagingTokens, state.paging_tokens)


PagingDep = Annotated[PagingTokens, Depends(paging_tokens)]


@dataclass(frozen=True)
class PageRequest:
    """A page request's query digest and cursor (None: the first page)."""

    digest: str
    cursor: Cursor | None

    @classmethod
    def of(cls, request: Request, tokens: PagingTokens) -> PageRequest:
        pairs = list(request.query_params.multi_items())
        digest = query_digest([("~path", request.url.path), *pairs])
        tokens_given = [value for name, value in pairs if name == CURSOR_PARAMETER]
        if len(tokens_given) > 1:
            raise RequestRefused(f"{CURSOR_PARAMETER} may be given once")
        cursor = tokens.decode(tokens_given[0], digest) if tokens_given else None
        return cls(digest, cursor)

    def snapshot(self) -> Snapshot | None:
        if self.cursor is None:
            return None
        return Snapshot(self.cursor.snapshot_pk, sort_value(self.cursor.snapshot_at))


def self_url(request: Request, ignored: Collection[str] = ()) -> str:
    """The request's URL with only the parameters the server used, as FHIR asks of a
    search's `self` link: one the server ignored is not repeated back."""
    if not ignored:
        return str(request.url)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ignored]
    return str(request.url.replace(query=urlencode(kept)))


def page_links(
    request: Request,
    tokens: PagingTokens,
    paged: Paged[Row],
    key_of: Callable[[Row], tuple[object, int]],
    bounds: tuple[str, Snapshot],
    ignored: Collection[str] = (),
) -> list[JsonValue]:
    """`self`, and `next`/`previous` when the page has neighbours; `key_of` gives a row's
    (sort key, primary key) for the paging token."""
    digest, snapshot = bounds
    links: list[JsonValue] = [{"relation": "self", "url": self_url(request, ignored)}]
    if not paged.rows:
        return links
    first, last = paged.rows[0], paged.rows[-1]
    for relation, row, forward, wanted in (
        ("next", last, True, paged.has_next),
        ("previous", first, False, paged.has_previous),
    ):
        if wanted:
            key, pk = key_of(row)
            cursor = Cursor(digest, snapshot.pk, snapshot.at.isoformat(), key, pk, forward)
            links.append({"relation": relation, "url": link(request, tokens.encode(cursor))})
    return links


def link(request: Request, token: str) -> str:
    """This request's URL with its paging token replaced by `token`."""
    url = request.url.remove_query_params(CURSOR_PARAMETER)
    return str(url.include_query_params(**{CURSOR_PARAMETER: token}))


def token_key(value: object) -> object:
    """A sort key as a paging token holds it (a time as UTC ISO text)."""
    return sort_value(value).isoformat() if isinstance(value, (str, datetime)) else value


def entry(base_url: str, found: Found, mode: str) -> AnswerValue:
    return {
        "fullUrl": f"{base_url}/{found.reference}",
        "resource": stored_fragment(found.content, found.version, found.last_updated),
        "search": {"mode": mode},
    }


def searchset(
    total: int, links: list[JsonValue], entries: list[AnswerValue], at: datetime
) -> dict[str, AnswerValue]:
    bundle: dict[str, AnswerValue] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": sort_value(at).isoformat().replace("+00:00", "Z")},
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def base_url(request: Request) -> str:
    return str(request.url_for("metadata")).removesuffix("/metadata")
