"""What a FHIR server says it can do: its CapabilityStatement, fetched and read.

`fetch_capability_statement` is `GET {base}/metadata`, always with a timeout, every failure
leaving as the most specific `EhrError`: 408, 429 and 5xx as the retryable ones (with the
EHR's `Retry-After`, kept by the `Pace` given), any other status as a bad response.
`Capabilities` is the part the EHR client adapts to: whole-Bundle interactions
(`transaction`, `batch`) and, per resource type, the interactions it accepts, conditional
ones included (`conditional-update`, ...).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests
from requests.auth import AuthBase

from adapter.ehr.http import FHIR_JSON, Timeout, call, json_object
from adapter.ehr.outcome import error_for_status
from adapter.ehr.pace import Pace
from adapter.errors import EhrBadResponse
from mappings.common.lookup import objs, str_field
from mappings.jsontypes import JsonObject, JsonValue

# CapabilityStatement.rest.resource flags, read as interactions of their own.
CONDITIONAL_FLAGS = {
    "conditionalCreate": "conditional-create",
    "conditionalUpdate": "conditional-update",
}


def fetch_capability_statement(
    base_url: str,
    timeout_seconds: Timeout,
    session: requests.Session | None = None,
    *,
    auth: AuthBase | None = None,
    pace: Pace | None = None,
) -> JsonObject:
    """The server's CapabilityStatement as JSON, or an `EhrError` saying why not.

    With `pace`, nothing is sent while the EHR's last `Retry-After` lasts, and this answer's
    own `Retry-After` is remembered there."""
    pace = pace or Pace(time.time)
    pace.check("/metadata")
    http = session or requests.Session()
    try:
        reply = call(
            http,
            "GET",
            f"{base_url}/metadata",
            timeout=timeout_seconds,
            auth=auth,
            headers={"Accept": FHIR_JSON},
        )
    finally:
        if session is None:
            http.close()
    return _capability_statement(reply, pace)


def _capability_statement(reply: requests.Response, pace: Pace) -> JsonObject:
    status = reply.status_code
    if status in (408, 429) or status >= 500:
        raise error_for_status(status, "/metadata", retry_after=pace.retry_after(reply))
    if status != 200:
        raise EhrBadResponse(f"the EHR answered HTTP {reply.status_code} to /metadata")
    body = json_object(reply, "/metadata")
    if body.get("resourceType") != "CapabilityStatement":
        raise EhrBadResponse("the EHR's /metadata answer is not a CapabilityStatement")
    return body


@dataclass(frozen=True)
class Capabilities:
    """The interactions a server declares, system-wide and per resource type."""

    fhir_version: str | None = None
    system_interactions: frozenset[str] = frozenset()
    resource_interactions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def supports_transaction(self) -> bool:
        return "transaction" in self.system_interactions

    @property
    def supports_batch(self) -> bool:
        return "batch" in self.system_interactions

    def supports(self, resource_type: str, interaction: str) -> bool:
        """Whether `interaction` (e.g. `update`, `conditional-update`) is declared for it."""
        return interaction in self.resource_interactions.get(resource_type, frozenset())


def parse_capabilities(statement: JsonObject) -> Capabilities:
    """The server-mode `rest` parts of a CapabilityStatement, merged; the rest is ignored."""
    system: set[str] = set()
    per_type: dict[str, set[str]] = {}
    for rest in objs(statement.get("rest")):
        if rest.get("mode", "server") != "server":
            continue
        system.update(_codes(rest.get("interaction")))
        for resource in objs(rest.get("resource")):
            resource_type = str_field(resource, "type")
            if resource_type is not None:
                per_type.setdefault(resource_type, set()).update(_resource_interactions(resource))
    return Capabilities(
        fhir_version=str_field(statement, "fhirVersion"),
        system_interactions=frozenset(system),
        resource_interactions={t: frozenset(codes) for t, codes in per_type.items()},
    )


def _resource_interactions(resource: JsonObject) -> set[str]:
    found = _codes(resource.get("interaction"))
    found.update(name for flag, name in CONDITIONAL_FLAGS.items() if resource.get(flag) is True)
    if resource.get("conditionalRead") not in (None, "not-supported"):
        found.add("conditional-read")
    return found


def _codes(interactions: JsonValue) -> set[str]:
    return {code for i in objs(interactions) if (code := str_field(i, "code")) is not None}
