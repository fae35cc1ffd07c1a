"""SMART Backend Services: the token endpoint and its discovery document.

    POST /auth/token                          client_credentials with a signed JWT assertion
    GET  /fhir/.well-known/smart-configuration where the token endpoint is, what it accepts

Both exist only when `ADAPTER_SMART_CLIENTS_FILE` names clients (404 otherwise). The request
is checked by `adapter.api.auth.token_requests`; refusals answer RFC 6749's JSON error body
(`invalid_client` 401, the others 400), never a problem detail. The token is signed by
`adapter.api.auth.access_tokens` and is accepted wherever an API key is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import cast
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adapter.api.auth.access_tokens import ACCESS_TOKEN_SECONDS, AccessTokens
from adapter.api.auth.smart_clients import SmartClient
from adapter.api.auth.token_requests import ASSERTION_ALGORITHMS, grant
from adapter.api.deps import ClockDep, SettingsDep, StoreReady
from adapter.errors import NotFound, StoreUnavailable, TokenRequestRefused
from adapter.store.assertions import remember_assertion
from adapter.store.engine import Engine, StoreError

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
FORM = "application/x-www-form-urlencoded"
SCOPES_SUPPORTED = (
    "system/*.rs",
    "system/*.read",
    "clinic/fhir.read",
    # A wildcard type does not reach subscriptions: they are named.
    "system/Subscription.cruds",
    "system/Subscription.rs",
    "system/Subscription.*",
    "system/Subscription.read",
    "system/Subscription.write",
)
CAPABILITIES = ("client-confidential-asymmetric", "permission-v2", "permission-v1")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/auth/token", name="smart_token")
async def token(
    request: Request, settings: SettingsDep, clock: ClockDep, _: StoreReady
) -> Response:
    clients, tokens = _smart(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return _oauth_error(TokenRequestRefused("invalid_request", f"send the form as {FORM}"))
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    engine = cast(Engine, request.app.state.engine)
    now = clock()

    def remember(client_id: str, jti: str, expires: datetime) -> bool:
        try:
            return remember_assertion(engine, client_id, jti, expires, now)
        except StoreError as exc:
            raise StoreUnavailable("the store could not record the assertion") from exc

    try:
        granted = grant(
            form, clients, token_url(request), now, remember, settings.jwt_leeway_seconds
        )
    except TokenRequestRefused as exc:
        log.info("token endpoint: refused (%s)", exc.error)
        return _oauth_error(exc)
    client = granted.client
    log.info("token endpoint: issued a token to client %s", client.client_id)
    body = {
        "access_token": tokens.issue(client.client_id, client.tenant, granted.scope, now),
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": granted.scope,
    }
    return JSONResponse(body, headers=_NO_STORE)


@router.get("/fhir/.well-known/smart-configuration")
async def smart_configuration(request: Request) -> Response:
    _smart(request)
    body = {
        "token_endpoint": token_url(request),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": list(CAPABILITIES),
    }
    return JSONResponse(body)


def token_url(request: Request) -> str:
    """The token endpoint's URL as this request reaches the service: an assertion's `aud`."""
    return str(request.url_for("smart_token"))


def _smart(request: Request) -> tuple[Mapping[str, SmartClient], AccessTokens]:
    clients = cast(Mapping[str, SmartClient], request.app.state.smart_clients)
    tokens = cast(AccessTokens | None, request.app.state.access_tokens)
    if not clients or tokens is None:
        raise NotFound("no SMART clients are configured here (ADAPTER_SMART_CLIENTS_FILE)")
    return clients, tokens


def _oauth_error(exc: TokenRequestRefused) -> Response:
    return JSONResponse(exc.oauth_error(), exc.status_code, headers=_NO_STORE)
