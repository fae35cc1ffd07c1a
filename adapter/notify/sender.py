"""Posting one notification to a receiver, with every door shut but the one asked for.

The endpoint is checked again before each post (`adapter.notify.guard`), its name looked
up within the timeout (a lookup that hangs is a failure, not a stuck thread); redirects are
never followed (a 3xx is a failure); the answer is read to at most `MAX_ANSWER_BYTES` and
for at most the timeout in all; no proxy or `.netrc` from the environment is used, so a
receiver's credential goes where the subscription says and nowhere else. The outcome never
holds the URL or the headers (they may hold the receiver's credential).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from adapter.errors import EndpointRefused
from adapter.notify.guard import Resolver, check_endpoint, resolve

MAX_ANSWER_BYTES = 64 * 1024
LOOKUP_THREADS = 8
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""
    """What failed, for the subscription's `last_error`: a class and a short reason."""
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (its Retry-After on 429 or 503)."""


class Sender:
    """Posts notification Bundles; one per deliverer, safe to share between its threads."""

    def __init__(self, allowed: frozenset[str], resolver: Resolver = resolve) -> None:
        self.allowed = allowed
        self.resolver = resolver
        self._local = threading.local()
        # Name lookups on threads of their own: a resolver that never answers must not hold
        # the deliverer's sending threads (the system's lookup has no timeout of its own).
        self._lookups = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="notify-dns")

    def post(self, endpoint: str, headers: tuple[str, ...], body: bytes, timeout: float) -> Outcome:
        def bounded(host: str, port: int) -> list[str]:
            lookup = self._lookups.submit(lambda: list(self.resolver(host, port)))
            try:
                return lookup.result(timeout)
            except FutureTimeout as exc:
                raise OSError("the name did not resolve in time") from exc

        try:
            check_endpoint(endpoint, self.allowed, bounded)
        except EndpointRefused as exc:
            return Outcome(False, error=f"EndpointRefused: {exc}")
        sent = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON} | _headers(headers)
        deadline = time.monotonic() + timeout
        try:
            with self._session().post(
                endpoint,
                data=body,
                headers=sent,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            ) as answer:
                _drain(answer, deadline)
                return _outcome(answer)
        except requests.Timeout:
            return Outcome(False, error="ReceiverTimeout: no answer in time")
        except requests.RequestException as exc:
            return Outcome(False, error=f"ReceiverUnavailable: {type(exc).__name__}")

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        return session


def _headers(lines: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for line in lines:
        name, _, value = line.partition(":")
        found[name.strip()] = value.strip()
    return found


def _drain(answer: requests.Response, deadline: float) -> None:
    """Read (and drop) the answer: at most MAX_ANSWER_BYTES, until the deadline."""
    read = 0
    for chunk in answer.iter_content(8192):
        read += len(chunk)
        if read >= MAX_ANSWER_BYTES or time.monotonic() > deadline:
            break


def _outcome(answer: requests.Response) -> Outcome:
    status = answer.status_code
    if 200 <= status < 300:
        return Outcome(True, status)
    if 300 <= status < 400:
        return Outcome(False, status, f"ReceiverRedirected: HTTP {status}, not followed")
    wait = retry_after(answer.headers.get("Retry-After")) if status in (429, 503) else None
    return Outcome(False, status, f"ReceiverRefused: HTTP {status}", wait)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header's seconds (a number or an HTTP date); None when absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
