"""The request bodies in the OpenAPI document: one shape for every route's (`request_body`),
and the clinic endpoints' bodies from the contract models.

The clinic endpoints read their body as raw bytes (the contract parser reports duplicate keys,
`NaN` and every bad field path itself), so FastAPI cannot infer a body schema. Without
one, the published schema hides what to send, and schema-driven clients and fuzzers
(Schemathesis) send nothing useful. `contract_body(model)` gives a route's `openapi_extra`;
`contract_definitions()` gives the models' shared definitions, which `adapter.api.openapi.document`
puts in the document's `components/schemas`, where those bodies refer to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_REF_TEMPLATE = "#/components/schemas/{model}"
_definitions: dict[str, Any] = {}


def request_body(
    media_type: str, schema: dict[str, Any], description: str, *, required: bool
) -> dict[str, Any]:
    """An `openapi_extra` declaring a route's body: one media type and its schema."""
    content = {media_type: {"schema": schema}}
    return {"requestBody": {"required": required, "description": description, "content": content}}


def contract_body(model: type[BaseModel]) -> dict[str, Any]:
    """An `openapi_extra` declaring `model`'s JSON Schema as the required JSON body."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    _definitions.update(schema.pop("$defs", {}))
    description = (
        f"One {model.__name__} of the clinic contract (docs/contract.md), UTF-8 JSON. Every "
        "field that breaks it is named in the 422's `errors`."
    )
    return request_body("application/json", schema, description, required=True)


def contract_definitions() -> dict[str, Any]:
    """The definitions the contract bodies refer to, for the document's `components/schemas`."""
    return dict(_definitions)
