"""OAuth2 token endpoint of the EHR: where it is, and what it answers to our grants.

Two grants, both `client_credentials`: with a client secret (sent as HTTP Basic, RFC 6749
2.3.1), and SMART Backend Services (a signed client assertion, no secret at all). The
endpoint is the configured URL, else the `token_endpoint` of the EHR's
`.well-known/smart-configuration`. A 429 or 503 with `Retry-After` from either is kept to:
no token request leaves before that time (`adapter.ehr.pace`). Token endpoint answers are
never logged or quoted: they hold the token; only the OAuth `error` code may appear in a message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote_plus, urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from adapter.ehr.assertion import CLIENT_ASSERTION_TYPE, SigningKey, client_assertion
from adapter.ehr.http import Timeout, call, json_object
from adapter.ehr.outcome import error_for_status
from adapter.ehr.pace import Clock, Pace
from adapter.errors import EhrAuthFailed, EhrBadResponse, EhrError
from mappings.common.lookup import str_field
from mappings.jsontypes import JsonObject, JsonValue

# SMART servers must send expires_in; when one does not, assume a short life.
DEFAULT_TOKEN_LIFETIME_SECONDS = 300.0
# Refresh this long before expiry, so a token never dies between check and use.
REFRESH_MARGIN_SECONDS = 60.0
# An absurd expires_in (or NaN) must not pin a token forever.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600.0
OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    refresh_at: float


class Grant(Protocol):
    """How we ask a token endpoint for an access token."""

    def token_request(self, token_url: str) -> tuple[dict[str, str], AuthBase | None]:
        """The form to POST and the client authentication to send with it."""
        ...


@dataclass(frozen=True)
class ClientSecretGrant:
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = ""

    def token_request(self, token_url: str) -> tuple[dict[str, str], AuthBase | None]:
        form = {"grant_type": "client_credentials"} | _scope(self.scope)
        basic = HTTPBasicAuth(quote_plus(self.client_id), quote_plus(self.client_secret))
        return form, basic


@dataclass(frozen=True)
class SmartBackendGrant:
    client_id: str
    key: SigningKey = field(repr=False)
    key_id: str
    scope: str
    clock: Clock = field(repr=False)

    def token_request(self, token_url: str) -> tuple[dict[str, str], AuthBase | None]:
        assertion = client_assertion(
            client_id=self.client_id,
            audience=token_url,
            key=self.key,
            key_id=self.key_id,
            now=self.clock(),
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return form | _scope(self.scope), None


def _scope(scope: str) -> dict[str, str]:
    return {"scope": scope} if scope else {}


class TokenEndpoint:
    """The EHR's token endpoint, found once, asked for a fresh token on demand."""

    def __init__(
        self,
        session: requests.Session,
        *,
        ehr_base_url: str,
        timeout: Timeout,
        clock: Clock,
        token_url: str = "",
        pace: Pace | None = None,
    ) -> None:
        self._session = session
        self._base_url = ehr_base_url
        self._timeout = timeout
        self._clock = clock
        self._url = token_url
        self._pace = pace or Pace(clock)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenEndpoint(discovered={not self._url})"

    @property
    def url(self) -> str:
        """The token endpoint's URL, read from smart-configuration the first time if unset."""
        with self._lock:
            if not self._url:
                self._url = self._discover()
            return self._url

    def fetch(self, grant: Grant) -> AccessToken:
        """A new access token for `grant`, or the `EhrError` the endpoint's answer means."""
        url = self.url
        self._pace.check("a token request")
        form, client_auth = grant.token_request(url)
        reply = call(
            self._session,
            "POST",
            url,
            timeout=self._timeout,
            auth=client_auth,
            headers={"Accept": "application/json"},
            form=form,
        )
        if reply.status_code != 200:
            raise self._refusal(reply)
        return self._token(json_object(reply, "a token request"))

    def _discover(self) -> str:
        self._pace.check("smart-configuration discovery")
        reply = call(
            self._session,
            "GET",
            f"{self._base_url}/.well-known/smart-configuration",
            timeout=self._timeout,
            headers={"Accept": "application/json"},
        )
        if reply.status_code != 200:
            retry_after = self._pace.retry_after(reply)
            raise error_for_status(
                reply.status_code, "smart-configuration discovery", retry_after=retry_after
            )
        url = str_field(json_object(reply, "smart-configuration"), "token_endpoint") or ""
        if not self._is_acceptable(url):
            raise EhrBadResponse("smart-configuration has no usable https token_endpoint")
        return url

    def _is_acceptable(self, url: str) -> bool:
        # Credentials go to this URL: plain http only when the EHR itself is plain http.
        scheme = urlsplit(url).scheme
        return bool(urlsplit(url).netloc) and (
            scheme == "https" or (scheme == "http" and self._base_url.startswith("http://"))
        )

    def _refusal(self, reply: requests.Response) -> EhrError:
        if reply.status_code in (400, 401, 403):
            return EhrAuthFailed(
                f"the token endpoint refused us: HTTP {reply.status_code} {_oauth_error(reply)}"
            )
        retry_after = self._pace.retry_after(reply)
        return error_for_status(reply.status_code, "a token request", retry_after=retry_after)

    def _token(self, body: JsonObject) -> AccessToken:
        value = str_field(body, "access_token")
        token_type = (str_field(body, "token_type") or "bearer").lower()
        if not value or token_type != "bearer":
            raise EhrBadResponse("the token endpoint's answer holds no bearer access_token")
        lifetime = _lifetime(body.get("expires_in"))
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        return AccessToken(value, refresh_at=self._clock() + lifetime - margin)


def _lifetime(expires_in: JsonValue) -> float:
    if (
        isinstance(expires_in, str)
        and expires_in.strip().isascii()
        and expires_in.strip().isdigit()
    ):
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return DEFAULT_TOKEN_LIFETIME_SECONDS
    if not 0 < expires_in <= MAX_TOKEN_LIFETIME_SECONDS:
        return DEFAULT_TOKEN_LIFETIME_SECONDS
    return float(expires_in)


def _oauth_error(reply: requests.Response) -> str:
    """The OAuth `error` code (`invalid_client`, ...), never its free-text description."""
    try:
        body: object = reply.json()
    except ValueError:
        return "(no OAuth error code)"
    code = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(code, str) and OAUTH_ERROR_CODE.fullmatch(code):
        return code
    return "(no OAuth error code)"
