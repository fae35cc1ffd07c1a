"""Who is calling the clinic API: static API keys from `ADAPTER_API_KEYS_FILE`, kept as hashes.

The file is a JSON list of `{"key": ..., "tenant": ..., "scopes": [...]}`, read and checked
once at startup by `adapter.api.auth.keys_file` (rotate keys by editing it and restarting). Only
each key's SHA-256 stays in memory. A presented key is hashed and compared with every
stored digest by `hmac.compare_digest`, without stopping at a match, so the time taken does
not tell which key it resembles. No file configured means no keys: every protected
endpoint answers 401; the API is never open by default.

A key whose tenant is `*` (`EVERY_TENANT`) is an operator's of every tenant: it may hold
`admin/` scopes only (`adapter.api.auth.keys_file` refuses any other), and the console shows it
every tenant's rows.

Scopes read `clinic/<resource>.<access>`, e.g. `clinic/encounters.write`; a `*` in either
part grants every value there (`clinic/*.write`, `clinic/submissions.*`, `clinic/*.*`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from adapter.errors import InsufficientScope, NotAuthenticated

if TYPE_CHECKING:
    from adapter.api.auth.access_tokens import AccessTokens
    from adapter.api.auth.jwt_tokens import JwtVerifier

log = logging.getLogger(__name__)

KEYS_FILE_VARIABLE = "ADAPTER_API_KEYS_FILE"
# 32 characters is 128 bits from `openssl rand -hex 16`; shorter keys can be guessed.
MIN_KEY_CHARS = 32
TENANT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# An operator's key of every tenant (the keys file's `"tenant": "*"`, admin scopes only):
# no record carries it, so a face that filters by the caller's tenant finds nothing.
EVERY_TENANT = "*"

ENCOUNTERS_WRITE = "clinic/encounters.write"
SUBMISSIONS_READ = "clinic/submissions.read"
PATIENTS_READ = "clinic/patients.read"
FHIR_READ = "clinic/fhir.read"
# Every clinic scope some endpoint asks for (`clinic/fhir.read`: the /fhir face).
CLINIC_SCOPES = (ENCOUNTERS_WRITE, SUBMISSIONS_READ, PATIENTS_READ, FHIR_READ)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its tenant, its scopes, and a loggable name for its key."""

    tenant: str
    scopes: frozenset[str]
    key_id: str
    """The first 8 hex digits of the key's SHA-256: names the key in logs, reveals nothing."""

    def has_scope(self, needed: str) -> bool:
        resource, _, access = needed.removeprefix("clinic/").partition(".")
        grants = {needed, f"clinic/*.{access}", f"clinic/{resource}.*", "clinic/*.*"}
        return not self.scopes.isdisjoint(grants)


@dataclass(frozen=True)
class StoredKey:
    digest: bytes
    caller: Caller


class ApiKeys:
    """The known API keys, as digests; `authenticate` turns a presented key into a Caller."""

    def __init__(self, keys: Sequence[StoredKey] = ()) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, token: str) -> Caller | None:
        digest = hashlib.sha256(token.encode()).digest()
        found: Caller | None = None
        for stored in self._keys:
            if hmac.compare_digest(stored.digest, digest):
                found = stored.caller
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: a JWT's compact form (an API key is told apart by it)."""
    return token.count(".") == 2


def authenticated_caller(request: Request, face: str) -> Caller:
    """The caller the request's bearer credential names; `NotAuthenticated` (401) otherwise.

    A JWT-shaped token signed by our own token endpoint's key goes to `AccessTokens`;
    another JWT-shaped token to the outside JWT verifier when one is configured; anything
    else is looked up as an API key. The caller is also left on `request.state.caller`, where the
    audit trail (`adapter.api.middleware.audit`) finds who made the request.
    """
    keys: ApiKeys = request.app.state.api_keys
    verifier: JwtVerifier | None = request.app.state.jwt_verifier
    ours: AccessTokens | None = getattr(request.app.state, "access_tokens", None)
    authorization = request.headers.get("authorization")
    token = bearer_token(authorization)
    if token is None:
        raise NotAuthenticated(
            "send an API key or access token as `Authorization: Bearer <credential>`",
            token_given=authorization is not None,
        )
    if ours is not None and looks_like_jwt(token) and ours.is_ours(token):
        caller = ours.caller(token)
    elif verifier is not None and looks_like_jwt(token):
        caller = verifier.caller(token)
    else:
        found = keys.authenticate(token)
        if found is None:
            log.info("%s: refused an unknown API key", face)
            raise NotAuthenticated("unknown API key", token_given=True)
        caller = found
    request.state.caller = caller
    return caller


def require_scope(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the authenticated caller, which must hold `scope` (401/403 otherwise)."""

    async def authorised_caller(request: Request) -> Caller:
        caller = authenticated_caller(request, "clinic API")
        if not caller.has_scope(scope):
            log.info("clinic API: key %s lacks scope %s", caller.key_id, scope)
            raise InsufficientScope(scope)
        return caller

    return authorised_caller
