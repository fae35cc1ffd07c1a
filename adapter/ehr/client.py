"""The EHR's FHIR REST API as the adapter uses it: read, search, history, and sending Bundles.

One `FhirClient` per EHR holds one pooled session, its auth, and the EHR's capabilities
(read once, lazily). Every call has a timeout; every failure leaves as the most specific
`EhrError`; after a 401, a token auth fetches a fresh token and the call is tried once more.
After a 429 or 503 with `Retry-After`, no request leaves the client until that time has
passed (`adapter.ehr.pace`): each is refused unsent with the time left, for its caller's
retry to wait.
Paging follows `next` links only while they stay under the base URL, so our token never
goes to another host. Logs carry resource types, counts and statuses, never URLs or bodies.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import requests

from adapter.config import DEFAULT_MAX_BUNDLE_ENTRIES, Settings
from adapter.ehr.auth import EhrAuth, auth_from_settings
from adapter.ehr.bundles import BundleResult
from adapter.ehr.capability import Capabilities, fetch_capability_statement, parse_capabilities
from adapter.ehr.http import (
    DEFAULT_POOL_SIZE,
    Params,
    call,
    json_object,
    new_session,
    timeout_of,
)
from adapter.ehr.outcome import error_for_status, operation_outcome
from adapter.ehr.pace import DEFAULT_RETRY_AFTER_MAX_SECONDS, Clock, Pace
from adapter.ehr.sender import DEFAULT_ENTRY_RETRY_DELAYS, BundleSender
from adapter.errors import ConfigError, EhrAmbiguousMatch, EhrBadResponse, EhrError
from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject

DEFAULT_TIMEOUT_SECONDS = 10.0
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Asks a server (HAPI caches identical searches for a minute) for the data as it is now.
FRESH = {"Cache-Control": "no-cache"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """One Bundle page of a search or history, with the server's clock when it answered."""

    bundle: JsonObject = field(repr=False)
    server_time: datetime | None
    """The Bundle's `meta.lastUpdated`, else the HTTP `Date` header; None without either."""


@dataclass(frozen=True)
class FetchedResource:
    """A resource as the EHR holds it, with the ETag (`W/"<version>"`) to update it safely."""

    resource: JsonObject = field(repr=False)
    etag: str | None


class FhirClient:
    """One EHR's FHIR REST API; use as a context manager, or `close()` it."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: EhrAuth | None = None,
        session: requests.Session | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
        entry_retry_delays: Sequence[float] = DEFAULT_ENTRY_RETRY_DELAYS,
        retry_after_max_seconds: float = DEFAULT_RETRY_AFTER_MAX_SECONDS,
        max_bundle_entries: int = DEFAULT_MAX_BUNDLE_ENTRIES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or new_session()
        self._auth = auth or EhrAuth()
        self._timeout = timeout_of(timeout_seconds)
        self._clock = clock
        self.pace = Pace(clock, max_seconds=retry_after_max_seconds)
        self._capabilities: Capabilities | None = None
        self._lock = threading.Lock()
        self._sender = BundleSender(
            self._post_bundle,
            self._error,
            sleep=sleep,
            retry_delays=entry_retry_delays,
            max_entries=max_bundle_entries,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> FhirClient:
        """The client for the configured EHR; `ConfigError` when none is, or auth cannot work."""
        if not settings.is_ehr_configured:
            raise ConfigError("ADAPTER_EHR_BASE_URL is empty: no EHR is configured")
        # A connection per Bundle a worker keeps in flight, plus a few for reads and pulls.
        pool_size = max(DEFAULT_POOL_SIZE, settings.worker_concurrency + 4)
        session = new_session(ca_bundle=settings.ehr_ca_bundle, pool_size=pool_size)
        auth = auth_from_settings(settings, session, clock)
        return cls(
            settings.ehr_base_url,
            auth=auth,
            session=session,
            timeout_seconds=settings.ehr_timeout_seconds,
            clock=clock,
            sleep=sleep,
            retry_after_max_seconds=settings.ehr_retry_after_max_seconds,
            max_bundle_entries=settings.ehr_max_bundle_entries,
        )

    def __repr__(self) -> str:
        return f"FhirClient(base_url={self.base_url!r}, auth={self._auth!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def capabilities(self) -> Capabilities:
        """What the EHR declares it supports, fetched on first use and kept."""
        with self._lock:
            if self._capabilities is None:
                statement = fetch_capability_statement(
                    self.base_url, self._timeout, self._session, auth=self._auth, pace=self.pace
                )
                self._capabilities = parse_capabilities(statement)
            return self._capabilities

    def send(self, bundle: JsonObject) -> BundleResult:
        """Post a transaction Bundle (or a batch, when the EHR needs it); every entry's answer."""
        return self._sender.send(bundle, use_transaction=self._uses_transaction)

    def _uses_transaction(self) -> bool:
        # A statement declaring neither says nothing useful: try the transaction then.
        capabilities = self.capabilities()
        return capabilities.supports_transaction or not capabilities.supports_batch

    def read(self, resource_type: str, resource_id: str) -> FetchedResource:
        """`GET [base]/Type/id`; `EhrNotFound` when it does not exist (any more)."""
        what = f"a read of {resource_type}"
        reply = self._request("GET", f"{self._type_url(resource_type)}/{_id(resource_id)}", what)
        resource = json_object(reply, what)
        if resource.get("resourceType") != resource_type:
            raise EhrBadResponse(f"the EHR's answer to {what} is not a {resource_type}")
        return FetchedResource(resource, reply.headers.get("ETag") or _etag(resource))

    def search(self, resource_type: str, params: Params = ()) -> Iterator[JsonObject]:
        """Every resource found, page after page (included ones too; never outcomes), as the
        EHR holds them now (never a cached search result)."""
        what = f"a search of {resource_type}"
        url = self._type_url(resource_type)
        for page, _ in self._pages(url, params, what, "searchset", headers=FRESH):
            for entry in objs(page.get("entry")):
                if obj(entry.get("search")).get("mode") != "outcome" and "resource" in entry:
                    yield obj(entry.get("resource"))

    def history(
        self, resource_type: str | None = None, resource_id: str | None = None, params: Params = ()
    ) -> Iterator[JsonObject]:
        """Every history entry (system, type or instance level); a deletion has no resource."""
        url = self.base_url
        if resource_type is not None:
            url = self._type_url(resource_type)
            if resource_id is not None:
                url = f"{url}/{_id(resource_id)}"
        what = f"a history of {resource_type or 'the system'}"
        for page, _ in self._pages(f"{url}/_history", params, what, "history"):
            yield from objs(page.get("entry"))

    def search_pages(self, resource_type: str, params: Params, *, max_pages: int) -> Iterator[Page]:
        """The pages of a search, fresh (never a server's cached result), at most `max_pages`."""
        url, what = self._type_url(resource_type), f"a search of {resource_type}"
        yield from self._fresh_pages(url, params, what, "searchset", max_pages)

    def history_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]:
        """The pages of a type's history (newest first), fresh, at most `max_pages`."""
        url, what = f"{self._type_url(resource_type)}/_history", f"a history of {resource_type}"
        yield from self._fresh_pages(url, params, what, "history", max_pages)

    def _fresh_pages(
        self, url: str, params: Params, what: str, bundle_type: str, max_pages: int
    ) -> Iterator[Page]:
        replies = self._pages(url, params, what, bundle_type, headers=FRESH, max_pages=max_pages)
        for page, date in replies:
            updated = str_field(obj(page.get("meta")), "lastUpdated")
            yield Page(page, _instant(updated) if updated else _http_date(date))

    def conditional_read_by_identifier(
        self, resource_type: str, system: str, value: str
    ) -> FetchedResource | None:
        """The one resource with this identifier, None if none; `EhrAmbiguousMatch` if several."""
        what = f"a search of {resource_type} by identifier"
        params = {"identifier": f"{system}|{value}", "_count": "2"}
        reply = self._request("GET", self._type_url(resource_type), what, params=params)
        page = _bundle(json_object(reply, what), "searchset", what)
        matches = [
            obj(e.get("resource"))
            for e in objs(page.get("entry"))
            if obj(e.get("search")).get("mode", "match") == "match" and "resource" in e
        ]
        total = page.get("total")
        if len(matches) > 1 or (isinstance(total, int) and total > 1):
            raise EhrAmbiguousMatch(f"several {resource_type} resources on the EHR match")
        return FetchedResource(matches[0], _etag(matches[0])) if matches else None

    def _pages(
        self,
        url: str,
        params: Params,
        what: str,
        bundle_type: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_pages: int | None = None,
    ) -> Iterator[tuple[JsonObject, str | None]]:
        """Each Bundle page and its `Date` header, following `next` links that stay under
        the base URL; `EhrBadResponse` past `max_pages` pages."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if max_pages is not None and len(seen) >= max_pages:
                raise EhrBadResponse(f"the EHR's pages for {what} go on past {max_pages} pages")
            params_now = params if not seen else None
            reply = self._request("GET", next_url, what, params=params_now, headers=headers)
            seen.add(next_url)
            page = _bundle(json_object(reply, what), bundle_type, what)
            yield page, reply.headers.get("Date")
            next_url = self._next_url(page, what)
            if next_url in seen:
                raise EhrBadResponse(f"the EHR's pages for {what} link back to themselves")

    def _next_url(self, page: JsonObject, what: str) -> str | None:
        link = next(
            (str_field(k, "url") for k in objs(page.get("link")) if k.get("relation") == "next"),
            None,
        )
        if not link:
            return None
        url = urljoin(self.base_url + "/", link)
        if not self._is_under_base(url):
            raise EhrBadResponse(f"the EHR's next link for {what} leaves its base URL")
        return url

    def _is_under_base(self, url: str) -> bool:
        base, found = urlsplit(self.base_url), urlsplit(url)
        return (found.scheme, found.netloc) == (base.scheme, base.netloc) and (
            found.path == base.path or found.path.startswith(base.path.rstrip("/") + "/")
        )

    def _type_url(self, resource_type: str) -> str:
        if not RESOURCE_TYPE.fullmatch(resource_type):
            raise ValueError("not a FHIR resource type name")
        return f"{self.base_url}/{resource_type}"

    def _post_bundle(self, bundle: JsonObject) -> requests.Response:
        return self._exchange("POST", self.base_url, json_body=bundle)

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The answer to a request, or the `EhrError` its failure status means."""
        reply = self._exchange(method, url, params=params, headers=headers)
        if reply.status_code >= 400:
            raise self._error(reply, what, False)
        return reply

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json_body: JsonObject | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send with our auth; on 401, once more if the auth could refresh its token. Nothing
        is sent while the EHR's pause lasts (`EhrRateLimited`)."""
        self.pace.check(f"a {method} request")
        try:
            reply = self._call(method, url, params, json_body, headers)
        except EhrError as exc:  # the token endpoint's pause is the EHR's too
            self.pace.hold(exc.retry_after)
            raise
        if reply.status_code == 401 and self._auth.forget():
            log.info("EHR answered 401 to %s: retrying once with a fresh token", method)
            reply = self._call(method, url, params, json_body, headers)
        return reply

    def _call(
        self,
        method: str,
        url: str,
        params: Params | None,
        json_body: JsonObject | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        return call(
            self._session,
            method,
            url,
            timeout=self._timeout,
            auth=self._auth,
            headers=headers,
            params=params,
            json_body=json_body,
        )

    def _error(self, reply: requests.Response, what: str, if_match: bool) -> EhrError:
        retry_after = self.pace.retry_after(reply)
        error = error_for_status(
            reply.status_code,
            what,
            outcome=operation_outcome(reply),
            retry_after=retry_after,
            if_match=if_match,
        )
        log.warning("EHR answered HTTP %d to %s: %s", reply.status_code, what, error.code)
        return error


def _instant(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _http_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


def _id(resource_id: str) -> str:
    if not RESOURCE_ID.fullmatch(resource_id):
        raise ValueError("not a FHIR logical id")
    return resource_id


def _etag(resource: JsonObject) -> str | None:
    version = str_field(obj(resource.get("meta")), "versionId")
    return f'W/"{version}"' if version else None


def _bundle(body: JsonObject, bundle_type: str, what: str) -> JsonObject:
    if body.get("resourceType") != "Bundle" or body.get("type") != bundle_type:
        raise EhrBadResponse(f"the EHR's answer to {what} is not a {bundle_type} Bundle")
    return body
