"""`GET /fhir/metadata`'s CapabilityStatement: exactly what the read-only FHIR API does.

The search parameters per type come from the search index's own table of what it reads
(adapter.store.search_index.PARAMETERS), so the statement cannot claim one it lacks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapter import __version__
from adapter.api.fhir_common import FHIR_JSON, SERVED_TYPES, instant
from adapter.api.fhir_params import REFERENCE_TARGETS
from adapter.store.search_index import PARAMETERS, paths_for
from mappings.jsontypes import JsonObject, JsonValue
from mappings.narrative import with_narrative

# `date` is when this statement last changed: for an `instance` statement, process start.
_STARTED = instant(datetime.now(UTC))
_INTERACTIONS = ("read", "vread", "history-instance", "history-type", "search-type")
_KINDS = {"token": "token", "reference": "reference", "date": "date"}
_EVERYTHING = {
    "Patient": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "Encounter": "http://hl7.org/fhir/OperationDefinition/Encounter-everything",
}
_SECURITY = (
    "Every read needs `Authorization: Bearer <API key>`; the key's tenant bounds what it "
    "sees (another tenant's resource is 404) in reads, searches, includes and paging. "
    "Scopes: system/*.rs, system/<Type>.rs, "
    "system/*.read (SMART system scopes), or clinic/fhir.read. No OAuth endpoints: keys "
    "are issued by the operator."
)
_SECURITY_WITH_TOKENS = (
    "Every read needs `Authorization: Bearer <API key or access token>`; the caller's tenant "
    "bounds what it sees (another tenant's resource is 404). Scopes: system/*.rs, "
    "system/<Type>.rs, system/*.read (SMART system scopes), or clinic/fhir.read. Access "
    "tokens: SMART Backend Services (client_credentials, private_key_jwt) at the token "
    "endpoint named here and in .well-known/smart-configuration."
)
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(base_url: str, token_url: str | None = None) -> JsonObject:
    """The R4 CapabilityStatement of this server, served at `base_url`; with `token_url`
    (SMART clients configured), its security names the token endpoint (oauth-uris)."""
    resources: list[JsonValue] = [_resource(resource_type) for resource_type in SERVED_TYPES]
    statement: JsonObject = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "Ketamine clinic FHIR adapter",
        "kind": "instance",
        "software": {"name": "ketamine-fhir-adapter", "version": __version__},
        "implementation": {
            "description": "Read-only FHIR R4 view of the adapter's store",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only: read, vread, history, search and $everything, "
                "JSON only.",
                "security": _security(token_url),
                "resource": resources,
            }
        ],
    }
    return with_narrative(statement)


def _security(token_url: str | None) -> JsonObject:
    security: JsonObject = {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "Bearer API keys with SMART system scopes",
            }
        ],
        "description": _SECURITY if token_url is None else _SECURITY_WITH_TOKENS,
    }
    if token_url is not None:
        token: JsonObject = {"url": "token", "valueUri": token_url}
        security["extension"] = [{"url": OAUTH_URIS, "extension": [token]}]
    return security


def _resource(resource_type: str) -> JsonValue:
    params = search_parameters(resource_type)
    references = [name for name, kind in params if kind == "reference"]
    resource: JsonObject = {
        "type": resource_type,
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalRead": "full-support",
        "searchInclude": [f"{resource_type}:{name}" for name in references],
        "searchRevInclude": _rev_includes(resource_type),
        "searchParam": [
            {"name": name, "type": kind}
            for name, kind in [("_id", "token"), ("_lastUpdated", "date"), *params]
        ],
    }
    if resource_type in _EVERYTHING:
        resource["operation"] = [{"name": "everything", "definition": _EVERYTHING[resource_type]}]
    return resource


def search_parameters(resource_type: str) -> list[tuple[str, str]]:
    """(name, FHIR search parameter type) of every parameter searchable on the type."""
    return [
        (name, _KINDS[kind])
        for name, (kind, _) in PARAMETERS.items()
        if paths_for(name, resource_type)
    ]


def _rev_includes(resource_type: str) -> list[JsonValue]:
    """`Source:param` of every reference parameter that may point at `resource_type`."""
    found: list[JsonValue] = []
    for source in SERVED_TYPES:
        for name, kind in search_parameters(source):
            target = REFERENCE_TARGETS.get(name)
            if kind == "reference" and target in (None, resource_type):
                found.append(f"{source}:{name}")
    return found
