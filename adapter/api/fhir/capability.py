"""`GET /fhir/metadata`'s CapabilityStatement: exactly what the read-only FHIR API does,
and the SearchParameter resources of the parameters that are ours, not R4's.

The search parameters per type come from the search index's own table of what it reads
(adapter.store.search_parameters.TABLE), so the statement cannot claim one it lacks; each
names its definition: R4's canonical, or `{base}/SearchParameter/{Type}-{name}` for one of
ours (`CUSTOM`), which `GET /fhir/SearchParameter/{id}` serves.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapter import __version__
from adapter.api.fhir.common import FHIR_JSON, SERVED_TYPES, instant
from adapter.api.fhir.params import REFERENCE_TARGETS
from adapter.store.search_parameters import CUSTOM, TABLE, custom_id, definition
from adapter.store.subscription_topics import TOPICS
from mappings.common.narrative import with_narrative
from mappings.jsontypes import JsonObject, JsonValue

# `date` is when this statement last changed: for an `instance` statement, process start.
_STARTED = instant(datetime.now(UTC))
_INTERACTIONS = ("read", "vread", "history-instance", "history-type", "search-type")
_BASE_DEFINITIONS = {
    "_id": "http://hl7.org/fhir/SearchParameter/Resource-id",
    "_lastUpdated": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
}
_MODIFIERS_DOC = (
    "Strict: an unsupported parameter, modifier, chain or prefix is 400 naming it; "
    "`Prefer: handling=lenient` ignores it and reports it in an OperationOutcome entry. "
    "Modifiers: :missing (all), :not (token), :exact and :contains (string), :identifier "
    "and :[type] (reference). Chains: patient.*, subject:Patient.*, encounter.*, context.*; "
    "_has:[type]:[reference]:[parameter]. Date prefixes eq ne gt lt ge le sa eb ap. "
    "POST [type]/_search (form-encoded) answers as the GET; _summary (true, text, data, "
    "count) and _elements."
)
_EVERYTHING = {
    "Patient": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "Encounter": "http://hl7.org/fhir/OperationDefinition/Encounter-everything",
}
_SECURITY = (
    "Every read needs `Authorization: Bearer <API key>`; the key's tenant bounds what it "
    "sees (another tenant's resource is 404) in reads, searches, includes and paging. "
    "Scopes: system/*.rs, system/<Type>.rs, "
    "system/*.read (SMART system scopes), or clinic/fhir.read; subscriptions: "
    "system/Subscription.cruds (named: a wildcard type does not reach them). No OAuth "
    "endpoints: keys are issued by the operator."
)
_SECURITY_WITH_TOKENS = (
    "Every read needs `Authorization: Bearer <API key or access token>`; the caller's tenant "
    "bounds what it sees (another tenant's resource is 404). Scopes: system/*.rs, "
    "system/<Type>.rs, system/*.read (SMART system scopes), or clinic/fhir.read; "
    "subscriptions: system/Subscription.cruds (named: a wildcard type does not reach "
    "them). Access "
    "tokens: SMART Backend Services (client_credentials, private_key_jwt) at the token "
    "endpoint named here and in .well-known/smart-configuration."
)
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(base_url: str, token_url: str | None = None) -> JsonObject:
    """The R4 CapabilityStatement of this server, served at `base_url`; with `token_url`
    (SMART clients configured), its security names the token endpoint (oauth-uris)."""
    resources: list[JsonValue] = [_resource(name, base_url) for name in SERVED_TYPES]
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
                "documentation": "Read-only: read, vread, history, search (GET and POST) and "
                "$everything (GET and POST), JSON only. " + _MODIFIERS_DOC,
                "security": _security(token_url),
                "resource": [*resources, _search_parameter_resource(), _subscription()],
                "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
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


def _resource(resource_type: str, base_url: str) -> JsonValue:
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
            {"name": name, "definition": _definition(resource_type, name, base_url), "type": kind}
            for name, kind in [("_id", "token"), ("_lastUpdated", "date"), *params]
        ],
    }
    if resource_type in _EVERYTHING:
        resource["operation"] = [{"name": "everything", "definition": _EVERYTHING[resource_type]}]
    return resource


def _definition(resource_type: str, name: str, base_url: str) -> str:
    if name in _BASE_DEFINITIONS:
        return _BASE_DEFINITIONS[name]
    return (
        definition(resource_type, name)
        or f"{base_url}/SearchParameter/{custom_id(resource_type, name)}"
    )


def _subscription() -> JsonValue:
    """Subscription (R4 Backport IG): its profile, interactions, operations and our topics."""
    backport = "http://hl7.org/fhir/uv/subscriptions-backport/"
    operations = backport + "OperationDefinition/"
    topics: list[JsonValue] = [
        {"url": backport + "StructureDefinition/capabilitystatement-subscriptiontopic-canonical",
         "valueCanonical": topic.url}
        for topic in TOPICS
    ]  # fmt: skip
    interactions: list[JsonValue] = [
        {"code": code} for code in ("create", "read", "update", "delete", "search-type")
    ]
    return {
        "extension": topics,
        "type": "Subscription",
        "supportedProfile": [backport + "StructureDefinition/backport-subscription"],
        "documentation": "Topic-based subscriptions (rest-hook) of the caller's tenant; scopes "
        "system/Subscription.* (or its SMART letters, or .read/.write). channel.header values "
        "show as *** unless the caller may update. Topics: GET Subscription/$topic-list.",
        "interaction": interactions,
        "searchParam": [{"name": "status", "type": "token"}],
        "operation": [
            {"name": name, "definition": f"{operations}backport-subscription-{name}"}
            for name in ("status", "events")
        ],
    }  # fmt: skip


def _search_parameter_resource() -> JsonValue:
    return {"type": "SearchParameter", "interaction": [{"code": "read"}, {"code": "search-type"}]}


def search_parameters(resource_type: str) -> list[tuple[str, str]]:
    """(name, FHIR search parameter type) of every parameter searchable on the type."""
    return [(name, kind) for name, (kind, _) in TABLE.get(resource_type, {}).items()]


def custom_search_parameters(base_url: str) -> list[JsonObject]:
    """Our SearchParameter resources: the parameters we keep that R4 does not define."""
    return [
        _custom(resource_type, name, description, base_url)
        for (resource_type, name), description in CUSTOM.items()
    ]


def _custom(resource_type: str, name: str, description: str, base_url: str) -> JsonObject:
    kind, paths = TABLE[resource_type][name]
    logical_id = custom_id(resource_type, name)
    expression = " | ".join(f"{resource_type}.{path}" for path in paths)
    parameter: JsonObject = {
        "resourceType": "SearchParameter",
        "id": logical_id,
        "url": f"{base_url}/SearchParameter/{logical_id}",
        "name": logical_id.replace("-", "_"),
        "status": "active",
        "description": description,
        "code": name,
        "base": [resource_type],
        "type": kind,
        "expression": expression,
    }
    if kind == "reference":
        parameter["target"] = [REFERENCE_TARGETS.get(name, "Patient")]
    return parameter


def _rev_includes(resource_type: str) -> list[JsonValue]:
    """`Source:param` of every reference parameter that may point at `resource_type`."""
    found: list[JsonValue] = []
    for source in SERVED_TYPES:
        for name, kind in search_parameters(source):
            target = REFERENCE_TARGETS.get(name)
            if kind == "reference" and target in (None, resource_type):
                found.append(f"{source}:{name}")
    return found
