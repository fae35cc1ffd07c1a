"""The audit trail: every call to a data endpoint becomes one row of the store's `audit` table.

`AuditTrail` is a pure-ASGI middleware, the outermost one, so it sees every request of the
clinic face (`/clinic/...`), the FHIR face (`/fhir/...`, `metadata` aside) and the admin
face (`/admin/...`) with its final status: refusals (401/403/404/413/422...) and the bare
500 included, and routes added later without their cooperation. It reads only:
- who: the `Caller` the auth dependency left on the request's state (`key:<8 hex>` of an API
  key, `jwt:<client_id or sub>`), `-` when none was authenticated;
- what: derived from the path (`Patient/<id>`, `Observation` plus the names, never the
  values, of the search parameters), `Submission/<id>` from the answer's `Location`, or
  what the route left as `request.state.audit_target` (`GET /clinic/patients/{mrn}`
  names the Patient by its logical id: the MRN of its path is never kept), with the
  interaction the route left as `audit_interaction` when its method cannot say it;
- the interaction (`create`, `update`, `read`, `vread`, `history-instance`, `search-type`,
  `operation`, ...), the HTTP status, and a count (the entries of a Bundle answer, the
  references of a clinic receipt, else 1 on success). A route that knows its answer's count
  hands it over (`hand_over_count`), sparing the trail a parse of the answer it just made;
  otherwise the trail parses the answer (JSON up to `MAX_COUNTED_BYTES`) to count in it.
No request or answer content is kept, so no clinical value can reach the trail.

Rows are written by `AuditWriter`, a thread that inserts what waits in batches (one
transaction per batch): the request pays for an append, not a commit. The cost is a window:
records still waiting when the process is killed are lost (a clean shutdown writes them).
When the writer falls `capacity` records behind, a request's call does not end (its
connection takes no next request) until its record has room: the trail slows callers down
rather than lose a record.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.api.auth.callers import Caller
from adapter.api.fhir.common import ID_PATTERN
from adapter.logs import REQUEST_ID
from adapter.store.audit import AuditEntry, insert_entries
from adapter.store.engine import Engine, write_transaction

log = logging.getLogger(__name__)

AUDITED_PREFIXES = ("/clinic/", "/fhir/", "/admin/")
UNAUDITED_PATHS = frozenset({"/fhir/metadata"})
NO_CALLER = "-"
# A route may leave on `request.state` what it touched, when its path cannot say it safely,
# and the interaction, when its method cannot (a POST that creates nothing: `$export`).
AUDIT_TARGET = "audit_target"
AUDIT_INTERACTION = "audit_interaction"
REQUEST_ID_HEADER = b"x-request-id"
# Where a route leaves its answer's count on the request's state (see `hand_over_count`).
COUNT_STATE = "audit_count"
BATCH_SIZE = 500
LINGER_SECONDS = 0.2
ROOM_POLL_SECONDS = 0.01
WRITE_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.5
# Answers larger than this are not parsed for a count (the count is then 0).
MAX_COUNTED_BYTES = 8 * 1024 * 1024
_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
# FHIR search parameter names are lower case (`_id`, `patient`, `code:text`, `subject.name`);
# anything else is kept as `?`, since a caller may type anything there, an MRN included.
_PARAMETER = re.compile(r"_?[a-z][a-z0-9\-]{0,63}(:[a-z\-]{1,32})?(\.[a-z\-]{1,32})?")


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    tenant: str
    actor: str
    interaction: str
    target: str
    count: int
    outcome: str

    def as_entry(self) -> AuditEntry:
        return AuditEntry(
            # The AuditEvent's id: random, so a tenant's ids count nothing of the others'.
            public_id=secrets.token_hex(16),
            at=self.at,
            tenant=self.tenant,
            actor=self.actor,
            action=self.interaction,
            object=self.target,
            count=self.count,
            outcome=self.outcome,
        )


class AuditWriter:
    """Writes submitted `AuditRecord`s in batches from its own thread, once the store is ready.

    Records wait in a deque that the writer drains every `LINGER_SECONDS` (sooner when
    asked to flush or stop): submitting is an append, with no lock and no wake-up of the
    writer per request (a condition variable per record cost a read about a sixth of its
    time in GIL hand-overs). Past `capacity` waiting records `submit` refuses, and the
    audit trail waits for room: callers slow down, records are never dropped for lack of
    room.
    """

    def __init__(self, engine: Engine, ready: threading.Event, capacity: int = 10_000) -> None:
        self.engine = engine
        self.ready = ready
        self.capacity = capacity
        self._pending: deque[AuditRecord] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        """Records given up after the store refused them `WRITE_ATTEMPTS` times."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then end the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, record: AuditRecord) -> bool:
        """Queue `record`; False (nothing queued) when `capacity` records already wait."""
        if len(self._pending) >= self.capacity:
            self._wake.set()
            return False
        self._pending.append(record)
        self.submitted += 1
        return True

    @property
    def depth(self) -> int:
        """Records waiting to be written."""
        return len(self._pending)

    async def submit_waiting(self, record: AuditRecord) -> None:
        """Queue `record`, waiting (without blocking the event loop) for room if need be."""
        while not self.submit(record):
            await asyncio.sleep(ROOM_POLL_SECONDS)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every record submitted so far now; False when that took over `timeout`."""
        target = self.submitted
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self.written + self.dropped < target and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.written + self.dropped >= target

    def _run(self) -> None:
        while True:
            self._wake.wait(LINGER_SECONDS)
            self._wake.clear()
            while self._pending:
                take = min(BATCH_SIZE, len(self._pending))
                self._write([self._pending.popleft() for _ in range(take)])
            if self._stopping:
                return

    def _write(self, records: list[AuditRecord]) -> None:
        while not self.ready.wait(1.0):
            pass  # the store is being migrated: the audit table may not exist yet
        entries = [record.as_entry() for record in records]
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with write_transaction(self.engine) as connection:
                    insert_entries(connection, entries)
            except Exception as exc:  # the trail must never take the service down
                log.error(
                    "audit: %s writing %d records (attempt %d of %d)",
                    type(exc).__name__,
                    len(records),
                    attempt,
                    WRITE_ATTEMPTS,
                )
                if attempt < WRITE_ATTEMPTS:
                    time.sleep(RETRY_PAUSE_SECONDS * attempt)
            else:
                self.written += len(records)
                return
        self.dropped += len(records)


class AuditTrail:
    """Pure-ASGI middleware: gives each request an id and submits one audit record for it."""

    def __init__(self, app: ASGIApp, writer: AuditWriter, clock: Any) -> None:
        self.app = app
        self.writer = writer
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(16)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        REQUEST_ID.set(request_id)
        path: str = scope["path"]
        audited = path.startswith(AUDITED_PREFIXES) and path not in UNAUDITED_PATHS
        answer = _Answer(state)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            if audited:
                answer.observe(message)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if audited:
                await self.writer.submit_waiting(self._record(scope, state, answer))

    def _record(self, scope: Scope, state: dict[str, Any], answer: _Answer) -> AuditRecord:
        status = answer.status or 500
        interaction, what = describe(
            scope["method"], scope["path"], scope["query_string"], keep_ids=status < 400
        )
        target = state.get(AUDIT_TARGET)
        if isinstance(target, str) and status < 400:
            # The route named what it read by its logical id; its path holds an MRN.
            what = target
        if interaction == "create":
            # 201 created something, 200 answered a resend; a refusal stays an attempted create.
            interaction = "update" if status == 200 else "create"
            what = answer.submission() or what
        named = state.get(AUDIT_INTERACTION)
        if isinstance(named, str):
            interaction = named
        caller = state.get("caller")
        who = caller if isinstance(caller, Caller) else None
        return AuditRecord(
            at=self.clock(),
            tenant=who.tenant if who else NO_CALLER,
            actor=actor_name(who),
            interaction=interaction,
            target=what[:512],
            count=answer.count() if status < 300 else 0,
            outcome=str(status),
        )


def actor_name(caller: Caller | None) -> str:
    """`key:<8 hex>` for an API key, `jwt:<client>` for a token, `-` for nobody."""
    if caller is None:
        return NO_CALLER
    name = caller.key_id if ":" in caller.key_id else f"key:{caller.key_id}"
    return name[:128]


def hand_over_count(request: Request, count: int) -> None:
    """Tell the audit trail the count of the answer about to be sent (see `answer_count`)."""
    setattr(request.state, COUNT_STATE, count)


def answer_count(document: Mapping[str, object]) -> int:
    """The count the trail keeps for a JSON object answer: a Bundle's entries, a clinic
    receipt's references, else 1."""
    entries = document.get("entry")
    if isinstance(entries, list):
        return len(entries)
    lists = [document.get(name) for name in ("created", "updated", "unchanged", "deleted")]
    if any(isinstance(found, list) for found in lists):
        return sum(len(found) for found in lists if isinstance(found, list))
    return 1


class _Answer:
    """What the audit keeps of an answer: its status, `Location`, and a body to count in
    (unless the route handed its count over on the request's `state`)."""

    def __init__(self, state: dict[str, object]) -> None:
        self.state = state
        self.status: int | None = None
        self.location = ""
        self.is_json = False
        self.body = bytearray()

    def observe(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                if name == b"location":
                    self.location = value.decode("latin-1")
                elif name == b"content-type":
                    self.is_json = b"json" in value
        elif (
            message["type"] == "http.response.body"
            and self.is_json
            and COUNT_STATE not in self.state
            and len(self.body) <= MAX_COUNTED_BYTES
        ):
            self.body += message.get("body", b"")

    def submission(self) -> str | None:
        last = self.location.rstrip("/").rpartition("/")[2]
        if "/clinic/submissions/" in self.location and ID_PATTERN.fullmatch(last):
            return f"Submission/{last}"
        return None

    def count(self) -> int:
        handed_over = self.state.get(COUNT_STATE)
        if isinstance(handed_over, int):
            return handed_over
        if not self.body or len(self.body) > MAX_COUNTED_BYTES:
            return 1 if self.status and self.status < 300 else 0
        try:
            document = orjson.loads(bytes(self.body))
        except orjson.JSONDecodeError:
            return 0
        return answer_count(document) if isinstance(document, dict) else 1


def describe(
    method: str, path: str, query_string: bytes, *, keep_ids: bool = True
) -> tuple[str, str]:
    """The FHIR restful interaction and the object of a request, from its path alone.

    Without `keep_ids` (a refused or failed request) ids read `(withheld)`: an id that named
    nothing is whatever the caller typed, possibly an MRN or a name.
    """
    ident = _id if keep_ids else _withheld
    if method not in ("GET", "HEAD"):
        return "create", "/".join(_safe(part) for part in path.strip("/").split("/")[:2])
    face, _, rest = path.strip("/").partition("/")
    parts = rest.split("/") if rest else []
    if face == "clinic":
        if len(parts) == 2 and parts[0] == "submissions":
            return "read", f"Submission/{ident(parts[1])}"
        return "read", "/".join(_safe(part) for part in ["clinic", *parts[:1]])
    return _fhir_interaction(parts, query_string, ident)


def _fhir_interaction(
    parts: list[str], query_string: bytes, ident: Callable[[str], str]
) -> tuple[str, str]:
    names = sorted(
        {
            name if _PARAMETER.fullmatch(name) else "?"
            for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        }
    )
    query = f"?{','.join(names)}" if names else ""
    if not parts:
        return "search-system", query or "?"
    kind = parts[0] if _TYPE.fullmatch(parts[0]) else "(invalid)"
    match parts[1:]:
        case []:
            return "search-type", kind + query
        case ["_history"]:
            return "history-type", kind
        case [identifier]:
            return "read", f"{kind}/{ident(identifier)}"
        case [identifier, "_history"]:
            return "history-instance", f"{kind}/{ident(identifier)}"
        case [identifier, "_history", version]:
            return "vread", f"{kind}/{ident(identifier)}/_history/{ident(version)}"
        case [identifier, operation] if operation.startswith("$"):
            return "operation", f"{kind}/{ident(identifier)}/{_safe(operation)}{query}"
        case _:
            return "operation", f"{kind}/(other)"


def _id(value: str) -> str:
    return value if ID_PATTERN.fullmatch(value) else "(invalid)"


def _withheld(_: str) -> str:
    return "(withheld)"


def _safe(value: str) -> str:
    return value if re.fullmatch(r"\$?[A-Za-z0-9_.\-]{1,64}", value) else "(invalid)"
