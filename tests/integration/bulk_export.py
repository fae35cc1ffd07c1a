"""A Bulk Data `$export` client for the integration tests, as the IG describes one: kick off
with `Prefer: respond-async`, poll the status URL and wait what each `Retry-After` asks, then
download every file of the manifest as NDJSON. Only loopback servers; every request has a
timeout, every wait a deadline."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import requests

# `requests` itself, or a `requests.Session` (Authlib's OAuth2Session adds its token).
Http = Any
KICK_OFF_HEADERS = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
NDJSON = "application/fhir+ndjson"
REQUEST_TIMEOUT_SECONDS = 60
# A small export takes seconds; a busy machine and HAPI's job scheduling stretch that.
EXPORT_DEADLINE_SECONDS = 300.0
# When a 202 carries no Retry-After (the IG allows it), poll at this pace.
DEFAULT_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Export:
    """A finished export: its manifest, every downloaded resource by file type, and the
    Retry-After values (seconds) the server asked for while it ran."""

    manifest: dict[str, Any]
    resources: dict[str, list[dict[str, Any]]]
    waits: list[float]

    def counts(self) -> Counter[str]:
        return Counter({kind: len(items) for kind, items in self.resources.items()})


def kick_off(url: str, params: dict[str, str] | None = None, http: Http = requests) -> str:
    """Start an export at `url` (`{base}/$export`, `{base}/Patient/$export`, ...); returns the
    status URL of the 202's Content-Location. `http`: a `requests.Session` that authorises
    its requests (an OAuth 2 client's), else plain `requests`."""
    reply = http.get(url, params=params, headers=KICK_OFF_HEADERS, timeout=REQUEST_TIMEOUT_SECONDS)
    assert reply.status_code == 202, f"kick-off answered {reply.status_code}: {reply.text[:500]}"
    status_url = str(reply.headers.get("Content-Location", ""))
    assert status_url.startswith("http"), f"no status URL in Content-Location: {reply.headers}"
    return status_url


def retry_after_seconds(reply: requests.Response) -> float:
    """The wait a 202 asks for: Retry-After in seconds (an HTTP date is not used here)."""
    value = reply.headers.get("Retry-After")
    if value is None:
        return DEFAULT_POLL_SECONDS
    assert value.strip().isdigit(), f"Retry-After is not a number of seconds: {value!r}"
    return float(value)


def wait_for_manifest(
    status_url: str, deadline_seconds: float = EXPORT_DEADLINE_SECONDS, http: Http = requests
) -> tuple[dict[str, Any], list[float]]:
    """Poll until the export is complete, sleeping what each Retry-After asks; returns the
    manifest and the waits asked for."""
    deadline = time.monotonic() + deadline_seconds
    waits: list[float] = []
    while True:
        reply = http.get(status_url, timeout=REQUEST_TIMEOUT_SECONDS)
        if reply.status_code != 202:
            break
        wait = retry_after_seconds(reply)
        waits.append(wait)
        left = deadline - time.monotonic()
        assert left > 0, f"export not complete after {deadline_seconds:.0f} s ({status_url})"
        time.sleep(min(wait, left))
    assert reply.status_code == 200, f"status answered {reply.status_code}: {reply.text[:500]}"
    manifest: dict[str, Any] = reply.json()
    return manifest, waits


def download(manifest: dict[str, Any], http: Http = requests) -> dict[str, list[dict[str, Any]]]:
    """Every file of the manifest, parsed line by line; each line must be a resource of the
    file's type."""
    resources: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        reply = http.get(output["url"], headers={"Accept": NDJSON}, timeout=REQUEST_TIMEOUT_SECONDS)
        assert reply.status_code == 200, f"{output['url']} answered {reply.status_code}"
        assert reply.headers.get("Content-Type", "").startswith(NDJSON), reply.headers
        lines = [orjson.loads(line) for line in reply.content.splitlines() if line.strip()]
        assert all(line["resourceType"] == output["type"] for line in lines), output
        resources.setdefault(output["type"], []).extend(lines)
    return resources


def run_export(url: str, params: dict[str, str] | None = None, http: Http = requests) -> Export:
    """Kick off, wait for, and download one export."""
    manifest, waits = wait_for_manifest(kick_off(url, params, http), http=http)
    return Export(manifest=manifest, resources=download(manifest, http), waits=waits)
