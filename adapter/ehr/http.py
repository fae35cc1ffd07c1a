"""The one seam between `requests` and the adapter for every call to an EHR.

A pooled `requests.Session` with safe defaults (TLS verified, FHIR JSON, our User-Agent),
and `call()`, which never sends without a timeout and turns every `requests` failure into
the most specific `EhrError`. Messages name the exception class, never the URL: query
strings may carry patient identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias, cast

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from adapter import __version__
from adapter.errors import EhrBadResponse, EhrTimeout, EhrUnavailable
from mappings.jsontypes import JsonObject

FHIR_JSON = "application/fhir+json"
USER_AGENT = f"ketamine-fhir-adapter/{__version__}"
# One worker talks to one EHR; a few connections cover it plus pulls running beside it.
DEFAULT_POOL_SIZE = 10

Timeout: TypeAlias = tuple[float, float] | float
"""(connect, read) seconds, or one figure for both, as `requests` takes them."""
Params: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]
"""Query parameters; a sequence of pairs when a name repeats (`_lastUpdated` twice)."""


def new_session(*, ca_bundle: str = "", pool_size: int = DEFAULT_POOL_SIZE) -> requests.Session:
    """A session reusing up to `pool_size` connections per host, verifying TLS certificates."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle or True
    session.headers.update({"Accept": FHIR_JSON, "User-Agent": USER_AGENT})
    return session


def timeout_of(seconds: float) -> tuple[float, float]:
    return (seconds, seconds)


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: Timeout,
    auth: AuthBase | None = None,
    headers: Mapping[str, str] | None = None,
    params: Params | None = None,
    json_body: JsonObject | None = None,
    form: Mapping[str, str] | None = None,
) -> requests.Response:
    """Send one request, or raise `EhrTimeout` / `EhrUnavailable` saying why it got no answer.

    A JSON body goes as `application/fhir+json`; a form as the usual urlencoded one.
    """
    sent_headers = dict(headers or {})
    data: bytes | Mapping[str, str] | None = form
    if json_body is not None:
        data = orjson.dumps(json_body)
        sent_headers["Content-Type"] = FHIR_JSON
    try:
        return session.request(
            method, url, timeout=timeout, auth=auth, headers=sent_headers, params=params, data=data
        )
    except requests.Timeout as exc:
        seconds = timeout[1] if isinstance(timeout, tuple) else timeout
        raise EhrTimeout(f"no answer from the EHR within {seconds:g} s") from exc
    except requests.RequestException as exc:
        raise EhrUnavailable(f"cannot reach the EHR: {type(exc).__name__}") from exc


def json_object(reply: requests.Response, what: str) -> JsonObject:
    """The reply's body as a JSON object, or `EhrBadResponse` naming `what` was expected."""
    try:
        body: object = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        # A web page where a FHIR server was expected: most often a base URL missing its path.
        is_html = reply.headers.get("Content-Type", "").lower().startswith("text/html")
        kind = "an HTML page" if is_html else "not JSON"
        raise EhrBadResponse(f"the EHR's answer to {what} is {kind}") from None
    if not isinstance(body, dict):
        raise EhrBadResponse(f"the EHR's answer to {what} is not a JSON object")
    return cast(JsonObject, body)
