"""A SMART Backend Services token request, checked: who the client is and what it gets.

`grant(form, ...)` takes the token request's form fields and answers the granted
`TokenGrant`, or raises `TokenRequestRefused` (400) / `InvalidClient` (401) with the
RFC 6749 error code. Checked in this order:
- `grant_type` is `client_credentials` (`unsupported_grant_type`);
- `client_assertion_type` is the JWT bearer type, `client_assertion` is present
  (`invalid_request`);
- the assertion's `alg` is RS384 or ES384 (never `none` or HMAC), its `iss` a registered
  client, its `kid` a key of that client's JWKS whose own `alg` (if stated) agrees;
  signature, `iss = sub = client_id`, `aud` = the token endpoint's URL, `exp` present and at
  most `MAX_ASSERTION_SECONDS` ahead, `jti` present (`invalid_client`);
- the `jti` was never used by this client within its lifetime, in any web process
  (`invalid_grant`);
- every scope asked for lies within what the client may have (`invalid_scope`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from adapter.api.auth.callers import Caller
from adapter.api.auth.smart_clients import SmartClient
from adapter.errors import InvalidClient, TokenRequestRefused

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300
_SMART_SCOPE = re.compile(
    r"system/(?P<type>\*|[A-Z][A-Za-z]*)\.(?P<access>read|write|\*|c?r?u?d?s?)"
)
_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# Types a wildcard (`system/*.rs`) does not reach: subscriptions carry receivers'
# credentials (`adapter.api.fhir.subscriptions`), so a token for them is asked by name.
_NAMED_ONLY = frozenset({"Subscription"})

# Records a used (client, jti) until the given expiry; False when already recorded.
RememberAssertion = Callable[[str, str, datetime], bool]


@dataclass(frozen=True)
class TokenGrant:
    client: SmartClient
    scope: str


def grant(
    form: Mapping[str, str],
    clients: Mapping[str, SmartClient],
    token_url: str,
    now: datetime,
    remember: RememberAssertion,
    leeway_seconds: float,
) -> TokenGrant:
    """The grant the token request `form` earns (see the module doc for the checks)."""
    if form.get("grant_type") != "client_credentials":
        raise TokenRequestRefused("unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != JWT_BEARER:
        raise TokenRequestRefused("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise TokenRequestRefused("invalid_request", "client_assertion is missing")
    client, claims = _verified(assertion, clients, token_url, now, leeway_seconds)
    expires = datetime.fromtimestamp(float(claims["exp"]) + leeway_seconds, UTC)
    if not remember(client.client_id, str(claims["jti"]), expires):
        raise TokenRequestRefused("invalid_grant", "this client_assertion's jti was used before")
    return TokenGrant(client, _granted_scope(form.get("scope", ""), client))


def _verified(
    assertion: str,
    clients: Mapping[str, SmartClient],
    token_url: str,
    now: datetime,
    leeway: float,
) -> tuple[SmartClient, Mapping[str, Any]]:
    try:
        header = jwt.get_unverified_header(assertion)
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise InvalidClient("client_assertion is not a well-formed JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ASSERTION_ALGORITHMS:
        raise InvalidClient(f"client_assertion must be signed {' or '.join(ASSERTION_ALGORITHMS)}")
    client = clients.get(issuer) if isinstance(issuer, str) else None
    if client is None:
        raise InvalidClient("client_assertion's iss is not a registered client")
    kid = header.get("kid")
    key = client.keys.key(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidClient("client_assertion's kid names no key of the client's JWKS")
    if key.algorithm not in (None, algorithm):
        raise InvalidClient("client_assertion's alg is not its key's")
    claims = _decoded(assertion, key.key, algorithm, client.client_id, token_url, leeway)
    if claims.get("sub") != client.client_id:
        raise InvalidClient("client_assertion's sub must be the client_id")
    if float(claims["exp"]) > now.timestamp() + MAX_ASSERTION_SECONDS + leeway:
        raise InvalidClient("client_assertion's exp is more than 5 minutes ahead")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidClient("client_assertion has no jti")
    return client, claims


def _decoded(
    assertion: str, key: Any, algorithm: str, client_id: str, token_url: str, leeway: float
) -> Mapping[str, Any]:
    try:
        return jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            audience=token_url,
            issuer=client_id,
            leeway=leeway,
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidClient("client_assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidClient(f"client_assertion's aud must be {token_url}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidClient(f"client_assertion has no {exc.claim}") from None
    except jwt.PyJWTError as exc:
        raise InvalidClient(f"client_assertion is not valid ({type(exc).__name__})") from None


def _granted_scope(asked: str, client: SmartClient) -> str:
    scopes = asked.split()
    if not scopes:
        raise TokenRequestRefused("invalid_scope", "scope is missing: ask for what you need")
    beyond = [scope for scope in scopes if not scope_within(scope, client.scopes)]
    if beyond:
        raise TokenRequestRefused(
            "invalid_scope", f"beyond what this client may have: {' '.join(beyond)}"
        )
    return " ".join(dict.fromkeys(scopes))


def scope_within(scope: str, allowed: frozenset[str]) -> bool:
    """Whether `scope` grants nothing that the scopes `allowed` do not."""
    if scope in allowed:
        return True
    if scope.startswith("clinic/"):
        return Caller("-", allowed, "-").has_scope(scope)
    asked = _SMART_SCOPE.fullmatch(scope)
    if asked is None:
        return False
    return any(_smart_covers(grant, asked) for grant in allowed)


def _smart_covers(allowed: str, asked: re.Match[str]) -> bool:
    match = _SMART_SCOPE.fullmatch(allowed)
    if match is None or match["type"] not in ("*", asked["type"]):
        return False
    if match["type"] == "*" and asked["type"] in _NAMED_ONLY:
        return False
    have = _PERMISSIONS.get(match["access"], match["access"])
    want = _PERMISSIONS.get(asked["access"], asked["access"])
    return set(want) <= set(have)
