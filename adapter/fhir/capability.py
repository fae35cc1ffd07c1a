"""Fetch a FHIR server's CapabilityStatement (`GET {base}/metadata`), always with a timeout.

This is the seam between `requests` and the adapter's error tree: every failure leaves here
as the most specific `EhrError`.
"""

from __future__ import annotations

from typing import Any

import requests

from adapter.errors import EhrBadResponse, EhrTimeout, EhrUnavailable

FHIR_JSON = "application/fhir+json"


def fetch_capability_statement(
    base_url: str, timeout_seconds: float, session: requests.Session | None = None
) -> dict[str, Any]:
    """The server's CapabilityStatement as JSON, or an `EhrError` saying why not."""
    http = session or requests.Session()
    try:
        reply = http.get(
            f"{base_url}/metadata", headers={"Accept": FHIR_JSON}, timeout=timeout_seconds
        )
    except requests.Timeout as exc:
        raise EhrTimeout(f"no answer from the EHR within {timeout_seconds:g} s") from exc
    except requests.RequestException as exc:
        raise EhrUnavailable(f"cannot reach the EHR: {type(exc).__name__}") from exc
    finally:
        if session is None:
            http.close()
    return _capability_statement(reply)


def _capability_statement(reply: requests.Response) -> dict[str, Any]:
    if reply.status_code >= 500:
        raise EhrUnavailable(f"the EHR answered HTTP {reply.status_code}")
    if reply.status_code != 200:
        raise EhrBadResponse(f"the EHR answered HTTP {reply.status_code} to /metadata")
    try:
        body = reply.json()
    except ValueError:
        raise EhrBadResponse("the EHR's /metadata answer is not JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        raise EhrBadResponse("the EHR's /metadata answer is not a CapabilityStatement")
    return body
