"""Who is calling, when the bearer credential is a JWT access token: verified against a JWKS.

The JWKS comes from `ADAPTER_JWKS_URL`, an http(s) URL or a file path, and is cached by
PyJWT's `PyJWKClient` (see `JwksCache`). A token whose `kid` the cache lacks makes one
refetch (key rotation), at most once every `REFETCH_INTERVAL_SECONDS`, so a flood of forged
`kid`s cannot turn the service into a load generator against the authorisation server.

Checked on every token, in this order, and refused with a 401 on the first failure:
- the header's `alg` is in the configured allow-list, which only ever holds asymmetric
  algorithms (RS*, PS*, ES*, EdDSA): `none` and HMAC are refused before any key is looked at,
  so a public key can never be used as an HMAC secret;
- the `kid` names a key of the JWKS whose own `alg` (when it states one) is the header's;
- signature, `iss`, `aud`, `exp` (required), `nbf` and `iat` with `leeway` seconds of skew;
- the tenant claim (`ADAPTER_JWT_TENANT_CLAIM`) is present and a valid tenant name.

Scopes are the space-separated `scope` claim (SMART v2: `system/Observation.rs`,
`system/*.rs`, `clinic/encounters.write`). The caller is named by `client_id`, else `sub`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.jwk_set_cache import JWKSetCache

from adapter.api.auth.callers import TENANT_PATTERN, Caller
from adapter.config import ASYMMETRIC_JWT_ALGORITHMS, DEFAULT_JWT_ALGORITHMS, Settings
from adapter.errors import JwksUnavailable, NotAuthenticated

log = logging.getLogger(__name__)

DEFAULT_ALGORITHMS = tuple(DEFAULT_JWT_ALGORITHMS.split(","))
REFETCH_INTERVAL_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0
_TENANT = re.compile(TENANT_PATTERN)
# The caller's name as kept in logs and audit: printable, bounded.
_CALLER_NAME = re.compile(r"[\x21-\x7e]{1,100}")


@dataclass(frozen=True)
class JwksKey:
    """One verification key, with the algorithm the JWKS restricts it to (if it does)."""

    key: Any
    algorithm: str | None


class _JwksClient(PyJWKClient):
    """PyJWT's JWKS client, reading `source` itself: an http(s) URL through `requests` (so
    its timeout and errors are ours), or a file; it hands PyJWT only the entries a token may
    be verified with (`signing_entries`) and remembers the `alg` each declares."""

    def __init__(self, source: str) -> None:
        # PyJWKClient takes only an http(s) URI, and reads it only in `fetch_data`, which
        # reads `source` instead: a file path gets a stand-in.
        uri = source if _is_url(source) else "https://jwks.file.invalid/"
        # The set is kept until a fetch replaces it (an outage keeps the keys we had);
        # refetching for an unknown `kid` is throttled by `JwksCache` on its own clock.
        super().__init__(uri, lifespan=math.inf, cooldown_duration=0, timeout=FETCH_TIMEOUT_SECONDS)
        self.source = source
        self.declared: dict[str, str | None] = {}

    def fetch_data(self) -> Any:
        entries = signing_entries(_load(self.source, self.timeout))
        self.declared = declared_algorithms(entries)
        return {"keys": entries}


class JwksCache:
    """The signing keys by `kid`, fetched lazily, refetched for an unknown `kid` (throttled).

    PyJWT's `PyJWKClient` fetches, parses, caches the set and matches the `kid`; this class
    decides when it may fetch, on a clock of its own (PyJWKClient's cooldown reads
    `time.monotonic` and does not count a failed fetch, so a flood of forged `kid`s during
    an outage of the JWKS would each fetch again).
    """

    def __init__(self, source: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._clock = clock
        self._client = _JwksClient(source)
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def of_document(cls, document: object, source: str) -> JwksCache:
        """A cache holding the keys of a JWKS given inline (never fetched; `source` names
        it in logs)."""
        cache = cls(source, clock=lambda: 0.0)
        entries = signing_entries(document)
        cache._client.declared = declared_algorithms(entries)
        if entries:
            cache._sets().put(PyJWKSet.from_dict({"keys": entries}))
        cache._fetched_at = math.inf
        return cache

    def key(self, kid: str) -> JwksKey | None:
        with self._lock:
            found = self._held(kid)
            if found is None and self._may_fetch():
                self._refresh()
                found = self._held(kid)
            if found is None:
                return None
            return JwksKey(found.key, self._client.declared.get(kid))

    def preload(self) -> None:
        """Fetch the JWKS now unless already fetched: the service calls it in a thread at
        startup, so that no request waits on the first fetch (the lookups run on the event
        loop; only a rotation refetch, at most every 30 s, still makes one request wait)."""
        with self._lock:
            if self._fetched_at is None:
                self._refresh()

    def _held(self, kid: str) -> PyJWK | None:
        if self._sets().get() is None:
            return None  # never fetched, or nothing usable: get_signing_keys would fetch
        return self._client.match_kid(self._client.get_signing_keys(), kid)

    def _may_fetch(self) -> bool:
        return (
            self._fetched_at is None or self._clock() - self._fetched_at >= REFETCH_INTERVAL_SECONDS
        )

    def _refresh(self) -> None:
        self._fetched_at = self._clock()
        try:
            fetched = self._client.get_jwk_set(refresh=True)
        except JwksUnavailable as exc:
            # Keep the keys we had: an outage of the JWKS must not log everybody out.
            log.warning("JWKS: keeping the cached keys: %s", exc)
            return
        except jwt.PyJWTError:
            self._sets().put(None)  # the JWKS holds no usable signing key now
            log.info("JWKS: 0 signing keys loaded")
            return
        log.info("JWKS: %d signing keys loaded", len(fetched.keys))

    def _sets(self) -> JWKSetCache:
        sets = self._client.jwk_set_cache
        assert sets is not None  # made with cache_jwk_set (PyJWKClient's default)
        return sets


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _load(source: str, timeout: float) -> object:
    if _is_url(source):
        try:
            reply = requests.get(source, timeout=timeout)
        except requests.RequestException as exc:
            raise JwksUnavailable(f"fetch failed: {type(exc).__name__}") from None
        if reply.status_code != 200:
            raise JwksUnavailable(f"fetch answered HTTP {reply.status_code}")
        raw = reply.content
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise JwksUnavailable(f"cannot read the file: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise JwksUnavailable("not JSON") from None


def declared_algorithms(entries: list[dict[str, Any]]) -> dict[str, str | None]:
    """The `alg` each `kid` is restricted to, if any; the first entry of a `kid` counts, as
    in PyJWKClient's `match_kid`."""
    declared: dict[str, str | None] = {}
    for entry in entries:
        declared.setdefault(entry["kid"], entry.get("alg"))
    return declared


def signing_entries(document: object) -> list[dict[str, Any]]:
    """The JWKS's entries that may verify an access token: each with a `kid`, for
    signatures, not a shared secret, and usable by PyJWT; what is skipped is logged."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        log.warning("JWKS: no `keys` list; no keys loaded")
        return []
    usable: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            log.warning("JWKS: key %d has no kid; skipped", index)
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue  # encryption keys and shared secrets never verify an access token
        try:
            jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWKS: key %d unusable (%s); skipped", index, type(exc).__name__)
            continue
        usable.append(entry)
    return usable


class JwtVerifier:
    """Turns a JWT access token into a `Caller`, or raises `NotAuthenticated` saying why."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
        tenant_claim: str = "tenant",
        leeway_seconds: float = 30.0,
    ) -> None:
        unsafe = set(algorithms) - ASYMMETRIC_JWT_ALGORITHMS
        if unsafe or not algorithms:
            raise ValueError(f"algorithms must be asymmetric, not {sorted(unsafe)}")
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.tenant_claim = tenant_claim
        self.leeway_seconds = leeway_seconds

    def caller(self, token: str) -> Caller:
        claims = self._claims(token)
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise _refused(f"the token has no valid `{self.tenant_claim}` claim")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise _refused("the token's `scope` claim must be a space-separated string")
        name = claims.get("client_id") or claims.get("sub")
        if not isinstance(name, str) or not _CALLER_NAME.fullmatch(name):
            raise _refused("the token names no client (`client_id` or `sub`)")
        return Caller(tenant, frozenset(scope.split()), f"jwt:{name}")

    def _claims(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise _refused(f"the token's algorithm is not one of {', '.join(self.algorithms)}")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _refused("the token's header has no `kid`")
        key = self.jwks.key(kid)
        if key is None:
            raise _refused("the token was signed by a key the JWKS does not hold")
        if key.algorithm not in (None, algorithm):
            raise _refused("the token's algorithm is not its key's")
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _refused("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _refused("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise _refused("the token is from another issuer") from None
        except jwt.PyJWTError as exc:
            raise _refused(f"the token is not valid ({type(exc).__name__})") from None


def _refused(reason: str) -> NotAuthenticated:
    log.info("JWT refused: %s", reason)
    return NotAuthenticated(reason, token_given=True)


def verifier_from(settings: Settings) -> JwtVerifier | None:
    """The verifier `settings` describe, or None when no JWKS is configured (API keys only)."""
    if not settings.jwks_url:
        return None
    return JwtVerifier(
        JwksCache(settings.jwks_url),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithms=tuple(settings.jwt_algorithms.split(",")),
        tenant_claim=settings.jwt_tenant_claim,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
