"""The clinic endpoints' request bodies in the OpenAPI document, from the contract models.

The endpoints read their body as raw bytes (the contract parser reports duplicate keys,
`NaN` and every bad field path itself), so FastAPI cannot infer a body schema. Without
one, the published schema hides what to send, and schema-driven clients and fuzzers
(Schemathesis) send nothing useful. `contract_body(model)` gives a route's `openapi_extra`;
`publish_contract_schemas(app)` adds the models' shared definitions to the document's
`components/schemas`, where those bodies refer to them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF_TEMPLATE = "#/components/schemas/{model}"
_definitions: dict[str, Any] = {}


def contract_body(model: type[BaseModel]) -> dict[str, Any]:
    """An `openapi_extra` declaring `model`'s JSON Schema as the required JSON body."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    _definitions.update(schema.pop("$defs", {}))
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def publish_contract_schemas(app: FastAPI) -> None:
    """Make `app.openapi()` carry the definitions the contract bodies refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(_definitions)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
