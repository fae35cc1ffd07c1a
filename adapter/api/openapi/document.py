"""The OpenAPI document (`/openapi.json`): FastAPI's paths, told the truth.

FastAPI sees each route's path and parameters, but not what a route reads itself (the
contract bodies, the FHIR search parameters) nor what it answers (every route returns its
own `Response`): it would show an empty 201, a 422 shape the app never sends, and no
security. `publish_openapi(app)` keeps FastAPI's paths and replaces, per operation, the
summary, description, security, parameters and answers with those of
`adapter.api.openapi.operations.OPERATIONS`, whose bodies are the pydantic models of
`adapter.api.clinic.answer_models` (and the contract's, for request bodies). An operation missing
from that table fails the document's test, so a new route cannot go undescribed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adapter.api.openapi.bodies import contract_definitions

REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_JSON = "application/problem+json"
PLAIN_JSON = "application/json"
FHIR_JSON = "application/fhir+json"
BEARER = "bearer"
# What FastAPI adds for its own request validation, which the app answers otherwise.
FASTAPI_ONLY_SCHEMAS = ("HTTPValidationError", "ValidationError")

Schema = dict[str, Any]


@dataclass(frozen=True)
class Header:
    description: str
    required: bool = False
    schema: Schema = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Answer:
    """One status an operation answers with: its body's model and media types, its headers."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media: tuple[str, ...] = (PLAIN_JSON,)
    headers: dict[str, Header] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str
    answers: tuple[Answer, ...]
    is_secured: bool = True
    parameters: tuple[Schema, ...] = ()
    """Parameters replacing FastAPI's (path parameters by name) or added (query, header)."""


def publish_openapi(app: FastAPI, operations: dict[tuple[str, str], Operation]) -> None:
    """Make `app.openapi()` return the document with `operations` applied (built once)."""
    generate = app.openapi
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not built:
            built.update(describe(generate(), operations))
        return built

    app.openapi = openapi  # type: ignore[method-assign]


def describe(document: dict[str, Any], operations: dict[tuple[str, str], Operation]) -> Schema:
    """`document` with every operation's description, security, parameters and answers."""
    models: set[type[BaseModel]] = set()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            described = operations.get((method, path))
            if described is None:
                continue  # the document's test names it
            _apply(operation, described)
            models.update(a.model for a in described.answers if a.model is not None)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_ONLY_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(contract_definitions())
    schemas.update(_definitions(models))
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <credential>`: an API key of "
            "ADAPTER_API_KEYS_FILE (made with `adapter keys new`), or a JWT access token "
            "verified against ADAPTER_JWKS_URL. Its scopes decide what it may call.",
        }
    }
    return document


def _apply(operation: Schema, described: Operation) -> None:
    operation["summary"] = described.summary
    operation["description"] = described.description
    operation["security"] = [{BEARER: []}] if described.is_secured else []
    operation["parameters"] = _parameters(operation.get("parameters", []), described.parameters)
    if not operation["parameters"]:
        del operation["parameters"]
    operation["responses"] = {str(a.status): _response(a) for a in described.answers}


def _parameters(generated: list[Schema], declared: tuple[Schema, ...]) -> list[Schema]:
    replaced = {(p["in"], p["name"]): p for p in declared}
    kept = [replaced.pop((p["in"], p["name"]), p) for p in generated]
    return kept + list(replaced.values())


def _response(answer: Answer) -> Schema:
    response: Schema = {"description": answer.description}
    if answer.model is not None:
        schema = {"$ref": REF_TEMPLATE.format(model=answer.model.__name__)}
        response["content"] = {media: {"schema": schema} for media in answer.media}
    if answer.headers:
        response["headers"] = {
            name: {"description": h.description, "required": h.required, "schema": h.schema}
            for name, h in answer.headers.items()
        }
    return response


def _definitions(models: set[type[BaseModel]]) -> Schema:
    ordered = sorted(models, key=lambda model: model.__name__)
    _, top = models_json_schema(
        [(model, "serialization") for model in ordered], ref_template=REF_TEMPLATE
    )
    definitions: Schema = top.get("$defs", {})
    return definitions
