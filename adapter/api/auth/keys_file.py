"""`ADAPTER_API_KEYS_FILE`: read and check the clinic API's keys file, or write a new key.

The file is a JSON list of `{"key": ..., "tenant": ..., "scopes": [...]}`. `load_api_keys`
reads it once at startup and refuses, with a `ConfigError` naming the file and the entry
by its position (never the key itself), anything that would only fail later: a file that
cannot be read or is not JSON, a key shorter than 32 characters, the same key twice, a
malformed tenant, a tenant `*` (every tenant) with a scope other than an operator's `admin/`
one, and a scope that grants nothing here (`clinic/encounter.write`, a typo,
would otherwise fail every call with 403). Whether a scope grants something is asked of
the same checks the routes use, so the two cannot disagree.

`add_key` appends an entry with a fresh random key (what `adapter keys new` does), creating
the file readable by its owner only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapter.api.admin.audit_events import grants_audit_read
from adapter.api.admin.scopes import ADMIN_SCOPES, grants_any
from adapter.api.auth.callers import (
    CLINIC_SCOPES,
    EVERY_TENANT,
    KEYS_FILE_VARIABLE,
    MIN_KEY_CHARS,
    TENANT_PATTERN,
    ApiKeys,
    Caller,
    StoredKey,
)
from adapter.api.fhir.common import SERVED_TYPES, may_read
from adapter.api.fhir.subscriptions import may as may_manage
from adapter.errors import ConfigError

# 32 random bytes: 43 URL-safe characters, far beyond guessing.
NEW_KEY_BYTES = 32
SCOPE_FORMS = (
    f"{', '.join(CLINIC_SCOPES)} (a `*` may stand for either part, e.g. clinic/*.read); "
    "system/<Type>.rs or system/*.read for the /fhir face; system/Subscription.* (or its "
    "SMART letters, .read, .write) for subscriptions; admin/AuditEvent.rs, "
    f"{', '.join(ADMIN_SCOPES)} for operators"
)

# A clinic's tenant, or `*`: an operator's key of every tenant.
KEY_TENANT_PATTERN = rf"{TENANT_PATTERN}|^\{EVERY_TENANT}$"


class KeyEntry(BaseModel):
    """One entry of the keys file, checked field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(min_length=MIN_KEY_CHARS, max_length=512)]
    tenant: Annotated[str, Field(pattern=KEY_TENANT_PATTERN)]
    scopes: Annotated[list[str], Field(min_length=1)]


def load_api_keys(path: str) -> ApiKeys:
    """The keys in `path` (none when empty); `ConfigError` naming the file and entry otherwise."""
    if not path:
        return ApiKeys()
    raw = _read_json(path)
    if not isinstance(raw, list):
        raise _refused(path, "must hold a JSON list of {key, tenant, scopes} entries")
    entries = [_entry(path, number, len(raw), item) for number, item in enumerate(raw, 1)]
    return ApiKeys(_stored_keys(path, entries))


def scope_problem(scope: str) -> str | None:
    """Why `scope` grants nothing on any of our faces; None when it grants something."""
    caller = Caller("-", frozenset({scope}), "-")
    if scope.startswith("clinic/"):
        granted = any(caller.has_scope(needed) for needed in CLINIC_SCOPES)
    elif scope.startswith("system/Subscription."):
        granted = any(may_manage(caller, letter) for letter in "cruds")
    elif scope.startswith("system/"):
        granted = any(may_read(caller, kind) for kind in SERVED_TYPES)
    elif scope.startswith("admin/"):
        granted = grants_audit_read(scope) or grants_any(scope)
    else:
        granted = False
    return None if granted else f"unknown scope {scope!r}: it grants nothing; use {SCOPE_FORMS}"


def add_key(path: Path, tenant: str, scopes: Sequence[str]) -> str:
    """Append an entry with a fresh key to the keys file at `path` (made if missing, owner
    only); the new key. The file is checked before and after, and replaced atomically."""
    entries: list[object] = []
    if path.exists():
        load_api_keys(str(path))
        entries = list(_read_json(str(path)))  # type: ignore[call-overload]
    key = secrets.token_urlsafe(NEW_KEY_BYTES)
    entry = {"key": key, "tenant": tenant, "scopes": list(scopes)}
    _entry(str(path), len(entries) + 1, len(entries) + 1, entry)
    _write_atomically(path, json.dumps([*entries, entry], indent=2) + "\n")
    load_api_keys(str(path))
    return key


def _read_json(path: str) -> object:
    return read_json_list_file(path, KEYS_FILE_VARIABLE, "keys")


def read_json_list_file(path: str, variable: str, what: str) -> object:
    """The JSON in the file at `path`; `ConfigError` naming `variable` and the file otherwise
    (never quoting the text, which could hold a secret)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{variable} ({path}): cannot be read ({reason}); make it readable by the adapter"
        ) from None
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(
            f"{variable} ({path}): is not UTF-8 text; it must be a JSON list of {what}"
        ) from None
    except json.JSONDecodeError as exc:
        # Position and reason only: the text around it could be a key.
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ConfigError(
            f"{variable} ({path}): is not JSON ({where}); it must be a JSON list of {what}"
        ) from None


def validation_problems(exc: ValidationError) -> str:
    """Each refused field of an entry, by location and message (never the input)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the entry'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def scopes_problem(scopes: Sequence[str]) -> str | None:
    """`scopes.<i>: <why>` for the first scope that grants nothing; None when all do."""
    for index, scope in enumerate(scopes):
        problem = scope_problem(scope)
        if problem is not None:
            return f"scopes.{index}: {problem}"
    return None


def _entry(path: str, number: int, total: int, item: object) -> KeyEntry:
    where = f"entry {number} of {total}"
    try:
        entry = KeyEntry.model_validate(item)
    except ValidationError as exc:
        # Locations and messages only: the input would echo the key itself.
        raise _refused(path, f"{where}: {validation_problems(exc)}") from None
    problem = scopes_problem(entry.scopes) or _every_tenant_problem(entry)
    if problem is not None:
        raise _refused(path, f"{where}: {problem}")
    return entry


def _every_tenant_problem(entry: KeyEntry) -> str | None:
    if entry.tenant != EVERY_TENANT:
        return None
    for index, scope in enumerate(entry.scopes):
        if not scope.startswith("admin/"):
            return (
                f"scopes.{index}: a key of every tenant (tenant *) may hold admin/ scopes "
                "only; give a clinic's scope to a key of that clinic"
            )
    return None


def _stored_keys(path: str, entries: list[KeyEntry]) -> list[StoredKey]:
    stored: list[StoredKey] = []
    seen: dict[bytes, int] = {}
    for number, entry in enumerate(entries, 1):
        digest = hashlib.sha256(entry.key.encode()).digest()
        if digest in seen:
            raise _refused(
                path,
                f"entry {number} repeats the key of entry {seen[digest]}; "
                "give each key once (a fresh one: adapter keys new)",
            )
        seen[digest] = number
        caller = Caller(entry.tenant, frozenset(entry.scopes), digest.hex()[:8])
        stored.append(StoredKey(digest, caller))
    return stored


def _refused(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{KEYS_FILE_VARIABLE} ({path}): {problem}")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
