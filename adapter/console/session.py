"""The console's sign-in: an admin credential exchanged for a signed session cookie.

The cookie holds the operator's name (`key:<8 hex>`, `jwt:<client>`), tenant (`*` for a key
of every tenant, which sees every tenant's rows and acts on any), admin scopes,
a CSRF token and its expiry, signed with HMAC-SHA256. It is `HttpOnly`, `SameSite=Strict`,
`Secure` when the request came over TLS, and lasts `ADAPTER_CONSOLE_SESSION_MINUTES`. The
signing key comes from `ADAPTER_PAGING_SECRET` when set (the same on every web process),
else is random per process (a restart signs everyone out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from fastapi import Request
from fastapi.responses import Response

from adapter.api.admin.scopes import CONSOLE_READ, holds
from adapter.api.auth.callers import EVERY_TENANT, ApiKeys, Caller, looks_like_jwt
from adapter.api.auth.jwt_tokens import JwtVerifier
from adapter.api.middleware.audit import actor_name
from adapter.errors import AdapterError, SignInRefused

COOKIE = "adapter_console"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Operator:
    name: str
    tenant: str
    scopes: frozenset[str]
    csrf: str
    expires: float

    def may(self, scope: str) -> bool:
        return holds(self.scopes, scope)

    @property
    def of_every_tenant(self) -> bool:
        """Signed in with a key of every tenant (`"tenant": "*"`)."""
        return self.tenant == EVERY_TENANT

    def reach(self, asked: str = "") -> str | None:
        """The tenant whose rows a page shows: the operator's own, whatever was `asked`;
        for an operator of every tenant the one asked for, or every tenant (None)."""
        if not self.of_every_tenant:
            return self.tenant
        return asked or None

    def may_see(self, tenant: str) -> bool:
        return self.of_every_tenant or tenant == self.tenant


def signing_key(paging_secret: str) -> bytes:
    if paging_secret:
        return hmac.new(paging_secret.encode(), b"console-session", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def operator_for(credential: str, keys: ApiKeys, verifier: JwtVerifier | None) -> Caller:
    """The caller an API key or JWT names, when it may use the console."""
    credential = credential.strip()
    caller: Caller | None
    if verifier is not None and looks_like_jwt(credential):
        try:
            caller = verifier.caller(credential)
        except AdapterError:
            caller = None
    else:
        caller = keys.authenticate(credential) if credential else None
    if caller is None or not holds(caller.scopes, CONSOLE_READ):
        raise SignInRefused
    return caller


def start_session(response: Response, request: Request, caller: Caller, minutes: float) -> None:
    admin = sorted(s for s in caller.scopes if s.startswith("admin/"))
    claims = {
        "name": actor_name(caller),
        "tenant": caller.tenant,
        "scopes": admin,
        "csrf": secrets.token_urlsafe(24),
        "exp": time.time() + minutes * 60,
    }
    response.set_cookie(
        COOKIE,
        _sign(_key(request), orjson.dumps(claims)),
        max_age=int(minutes * 60),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")


def current_operator(request: Request) -> Operator | None:
    """The signed-in operator, or None (no cookie, a forged or an expired one)."""
    cookie = request.cookies.get(COOKIE)
    payload = _verified(_key(request), cookie) if cookie else None
    if payload is None:
        return None
    claims = orjson.loads(payload)
    if claims["exp"] < time.time():
        return None
    return Operator(
        claims["name"], claims["tenant"], frozenset(claims["scopes"]), claims["csrf"], claims["exp"]
    )


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.console_key
    return key


def _sign(key: bytes, payload: bytes) -> str:
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def _verified(key: bytes, cookie: str) -> bytes | None:
    body, _, mac = cookie.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except ValueError:
        return None
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    return payload if hmac.compare_digest(expected, given) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
