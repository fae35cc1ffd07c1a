"""`/fhir/SearchParameter`: the definitions of the search parameters that are ours.

    GET /fhir/SearchParameter          searchset Bundle of every one (no key needed)
    GET /fhir/SearchParameter/{id}     one, by the id its CapabilityStatement definition names

They are conformance resources, like the CapabilityStatement: the same for every tenant
and free of clinical content, so no key is needed (see adapter.api.fhir.capability).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.api.fhir.bundle import base_url
from adapter.api.fhir.capability import custom_search_parameters
from adapter.api.fhir.common import AnswerValue, FhirRoute, fhir_response, instant, media_type
from adapter.errors import NotFound

# Before the read routes: `/SearchParameter/{id}` would read as a resource of the store.
router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)


@router.get("/SearchParameter", name="fhir_search_parameters")
def search_parameters(request: Request) -> Response:
    media, base = media_type(request), base_url(request)
    found = custom_search_parameters(base)
    bundle: dict[str, AnswerValue] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(datetime.now(UTC))},
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base}/SearchParameter/{item['id']}",
                "resource": item,
                "search": {"mode": "match"},
            }
            for item in found
        ],
    }
    return fhir_response(bundle, media=media)


@router.get("/SearchParameter/{logical_id}", name="fhir_search_parameter")
def search_parameter(logical_id: str, request: Request) -> Response:
    media = media_type(request)
    for item in custom_search_parameters(base_url(request)):
        if item["id"] == logical_id:
            return fhir_response(item, media=media)
    raise NotFound("no such SearchParameter (see /fhir/metadata for their definitions)")
