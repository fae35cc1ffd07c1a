"""`GET /fhir/metadata`'s CapabilityStatement: exactly what the read-only FHIR API does."""

from __future__ import annotations

from datetime import UTC, datetime

from adapter import __version__
from adapter.api.fhir_common import FHIR_JSON, SERVED_TYPES, instant
from mappings.jsontypes import JsonObject, JsonValue

# `date` is when this statement last changed: for an `instance` statement, process start.
_STARTED = instant(datetime.now(UTC))
_INTERACTIONS = ("read", "vread", "history-instance")
_SECURITY = (
    "Every read needs `Authorization: Bearer <API key>`; the key's tenant bounds what it "
    "sees (another tenant's resource is 404). Scopes: system/*.rs, system/<Type>.rs, "
    "system/*.read (SMART system scopes), or clinic/fhir.read. No OAuth endpoints: keys "
    "are issued by the operator."
)


def capability_statement(base_url: str) -> JsonObject:
    """The R4 CapabilityStatement of this server, served at `base_url`."""
    resources: list[JsonValue] = [
        {
            "type": resource_type,
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalRead": "full-support",
        }
        for resource_type in SERVED_TYPES
    ]
    return {
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
                "documentation": "Read-only: read, vread and instance history, JSON only.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ],
                            "text": "Bearer API keys with SMART system scopes",
                        }
                    ],
                    "description": _SECURITY,
                },
                "resource": resources,
            }
        ],
    }
