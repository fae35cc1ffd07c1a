"""Sending one Bundle: as a transaction when the EHR can take it, else as a batch.

A transaction is all or nothing. When the EHR does not declare `transaction`, or refuses
one for its size, the same entries go as a batch (references made standalone by
`batch.py`); the batch's entries that failed with a retryable status are sent again, a few
times with a short pause, and an entry that succeeded is never sent twice. What is still
failing after that is left in the `BundleResult` for the push worker to back off on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import requests

from adapter.config import DEFAULT_MAX_BUNDLE_ENTRIES
from adapter.ehr.batch import batch_entries, request_of
from adapter.ehr.bundles import BundleResult, EntryResult, entry_results, unanswered
from adapter.ehr.chunks import transaction_chunks
from adapter.ehr.http import json_object
from adapter.ehr.outcome import is_too_large, operation_outcome
from adapter.errors import EhrError
from mappings.common.lookup import objs
from mappings.jsontypes import JsonObject, JsonValue

# Pauses before each new round of retried batch entries; the worker backs off longer.
DEFAULT_ENTRY_RETRY_DELAYS = (0.5, 2.0)

Post = Callable[[JsonObject], requests.Response]
ToError = Callable[[requests.Response, str, bool], EhrError]

log = logging.getLogger(__name__)


class BundleSender:
    """Posts Bundles through `post` and reads the answers; `to_error` classifies failures."""

    def __init__(
        self,
        post: Post,
        to_error: ToError,
        *,
        sleep: Callable[[float], None],
        retry_delays: Sequence[float] = DEFAULT_ENTRY_RETRY_DELAYS,
        max_entries: int = DEFAULT_MAX_BUNDLE_ENTRIES,
    ) -> None:
        self._post = post
        self._to_error = to_error
        self._sleep = sleep
        self._retry_delays = tuple(retry_delays)
        self._max_entries = max_entries

    def send(self, bundle: JsonObject, *, use_transaction: Callable[[], bool]) -> BundleResult:
        """Every entry's answer; raises `EhrError` only when no entry got an answer."""
        entries = _entries_of(bundle)
        if bundle.get("type") == "transaction" and use_transaction():
            if len(entries) > self._max_entries:
                return self._send_in_chunks(entries)
            result = self._send_transaction(list(enumerate(entries)))
            if result is not None:
                return _logged(result)
        return _logged(self._send_batch(list(enumerate(entries))))

    def _send_in_chunks(self, entries: list[JsonObject]) -> BundleResult:
        """A transaction past the most entries the EHR is sent at once, as several in
        dependency order; a failed chunk ends the sending, and its entries and those of
        the chunks after it carry its error (the push retries just those)."""
        chunks = transaction_chunks(entries, self._max_entries)
        results: list[EntryResult] = []
        posts = 0
        for n, chunk in enumerate(chunks):
            try:
                part = self._send_transaction(chunk) or self._send_batch(chunk)
            except EhrError as exc:
                if not results:
                    raise
                results += unanswered([sent for rest in chunks[n:] for sent in rest], exc)
                break
            results += part.entries
            posts += part.posts
            if not part.is_success:
                cause = next(e.error for e in part.entries if e.error is not None)
                assert cause is not None
                results += unanswered([sent for rest in chunks[n + 1 :] for sent in rest], cause)
                break
        log.info("transaction of %d entries sent in %d chunk(s)", len(entries), len(chunks))
        ordered = tuple(sorted(results, key=lambda r: r.index))
        return _logged(BundleResult("transaction", ordered, posts))

    def _send_transaction(self, sent: list[tuple[int, JsonObject]]) -> BundleResult | None:
        """The transaction's result, or None when the EHR found it too large."""
        entries = [e for _, e in sent]
        entry: list[JsonValue] = list(entries)
        reply = self._post({"resourceType": "Bundle", "type": "transaction", "entry": entry})
        if reply.status_code >= 400:
            if is_too_large(reply.status_code, operation_outcome(reply)):
                log.info(
                    "transaction of %d entries too large (HTTP %d): sending a batch",
                    len(entries),
                    reply.status_code,
                )
                return None
            raise self._to_error(reply, "a transaction", _any_if_match(entries))
        body = json_object(reply, "a transaction")
        return BundleResult("transaction", tuple(entry_results(body, "transaction", sent)))

    def _send_batch(self, sent: list[tuple[int, JsonObject]]) -> BundleResult:
        indexes = [i for i, _ in sent]
        pending = [(indexes[j], e) for j, e in batch_entries([e for _, e in sent])]
        results: dict[int, EntryResult] = {}
        posts = 0
        for delay in (None, *self._retry_delays):
            if delay is not None:
                self._sleep(delay)
            try:
                answered = self._post_batch(pending)
            except EhrError as exc:
                if not results:
                    raise
                log.warning("batch retry round failed: %s", exc.code)
                break
            posts += 1
            results.update((r.index, r) for r in answered)
            pending = [(i, e) for i, e in pending if results[i].is_retryable]
            if not pending:
                break
        return BundleResult("batch", tuple(results[i] for i in sorted(results)), posts)

    def _post_batch(self, sent: list[tuple[int, JsonObject]]) -> list[EntryResult]:
        entries = [e for _, e in sent]
        reply = self._post({"resourceType": "Bundle", "type": "batch", "entry": list(entries)})
        if reply.status_code >= 400:
            raise self._to_error(reply, "a batch", _any_if_match(entries))
        return entry_results(json_object(reply, "a batch"), "batch", sent)


def _entries_of(bundle: JsonObject) -> list[JsonObject]:
    """The Bundle's entries; `ValueError` if it is not a transaction or batch we can send."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
        raise ValueError("only a transaction or batch Bundle can be sent")
    entries = objs(bundle.get("entry"))
    asks = [request_of(e) for e in entries]
    if not entries or any(not (ask.get("method") and ask.get("url")) for ask in asks):
        raise ValueError("every entry of a Bundle to send needs request.method and request.url")
    return entries


def _any_if_match(entries: Sequence[JsonObject]) -> bool:
    return any("ifMatch" in request_of(e) for e in entries)


def _logged(result: BundleResult) -> BundleResult:
    log.info(
        "%s of %d entries: %d succeeded, %d failed, %d POST(s)",
        result.mode,
        len(result.entries),
        len(result.entries) - len(result.failures),
        len(result.failures),
        result.posts,
    )
    return result
