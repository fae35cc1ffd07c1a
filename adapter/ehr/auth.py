"""How each request to the EHR proves who we are, chosen by `ADAPTER_EHR_AUTH`.

    none                nothing
    basic               HTTP Basic with a username and password
    bearer              a static token
    client_credentials  OAuth2 token from a client id and secret
    smart_backend       OAuth2 token from a signed client assertion (SMART Backend Services)

Each kind is a `requests` auth hook. Token kinds cache their token until shortly before it
expires; when the EHR still answers 401, the client calls `forget()` and retries once.
Secrets live in private attributes that no `repr` shows.
"""

from __future__ import annotations

import threading
import time

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from adapter.config import Settings
from adapter.ehr.assertion import load_signing_key
from adapter.ehr.http import timeout_of
from adapter.ehr.oauth import (
    AccessToken,
    ClientSecretGrant,
    Grant,
    SmartBackendGrant,
    TokenEndpoint,
)
from adapter.ehr.pace import Clock, Pace


class EhrAuth(AuthBase):
    """No credentials; the base of every kind."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def forget(self) -> bool:
        """Drop a credential the EHR refused; True when a retry may get a fresh one."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BasicAuth(EhrAuth):
    def __init__(self, username: str, password: str) -> None:
        self._basic = HTTPBasicAuth(username, password)
        self.username = username

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return self._basic(request)

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"


class BearerAuth(EhrAuth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


class TokenAuth(EhrAuth):
    """An OAuth2 access token from `endpoint` for `grant`, fetched when missing or due."""

    def __init__(self, endpoint: TokenEndpoint, grant: Grant, clock: Clock = time.time) -> None:
        self._endpoint = endpoint
        self._grant = grant
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._current().value}"
        return request

    def _current(self) -> AccessToken:
        with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                self._token = self._endpoint.fetch(self._grant)
            return self._token

    def forget(self) -> bool:
        with self._lock:
            self._token = None
        return True

    def __repr__(self) -> str:
        return f"TokenAuth(grant={self._grant!r}, endpoint={self._endpoint!r})"


def auth_from_settings(
    settings: Settings, session: requests.Session, clock: Clock = time.time
) -> EhrAuth:
    """The auth kind `settings` choose; `ConfigError` if its private key is unusable."""
    kind = settings.ehr_auth
    if kind == "basic":
        password = settings.ehr_auth_password.get_secret_value()
        return BasicAuth(settings.ehr_auth_username, password)
    if kind == "bearer":
        return BearerAuth(settings.ehr_auth_token.get_secret_value())
    if kind == "none":
        return EhrAuth()
    endpoint = TokenEndpoint(
        session,
        ehr_base_url=settings.ehr_base_url,
        timeout=timeout_of(settings.ehr_timeout_seconds),
        clock=clock,
        token_url=settings.ehr_auth_token_url,
        pace=Pace(clock, max_seconds=settings.ehr_retry_after_max_seconds),
    )
    return TokenAuth(endpoint, _grant(settings, clock), clock)


def _grant(settings: Settings, clock: Clock) -> Grant:
    if settings.ehr_auth == "client_credentials":
        secret = settings.ehr_auth_client_secret.get_secret_value()
        return ClientSecretGrant(settings.ehr_auth_client_id, secret, settings.ehr_scope)
    return SmartBackendGrant(
        client_id=settings.ehr_auth_client_id,
        key=load_signing_key(settings.ehr_auth_private_key_file),
        key_id=settings.ehr_auth_key_id,
        scope=settings.ehr_scope,
        clock=clock,
    )
