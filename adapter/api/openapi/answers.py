"""The answers and parameters several operations of `/openapi.json` share.

Used by `adapter.api.openapi.operations`, which lists each operation; the statuses are the
ones the routes, their dependencies and the middleware really send.
"""

from __future__ import annotations

from adapter.api.clinic.answer_models import (
    FhirResource,
    OperationOutcome,
    Problem,
    Receipt,
)
from adapter.api.fhir.params import KNOWN_PARAMETERS
from adapter.api.fhir.resource_types import SERVED_TYPES
from adapter.api.openapi.bodies import request_body
from adapter.api.openapi.document import (
    FHIR_JSON,
    PLAIN_JSON,
    PROBLEM_JSON,
    Answer,
    Header,
    Operation,
    Schema,
)

FHIR_MEDIA = (FHIR_JSON, PLAIN_JSON)
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
EVERYTHING_TYPES = ("Patient", "Encounter")

# -- answers shared by several operations ---------------------------------------------------

RETRY_AFTER = Header("Seconds to wait before trying again", schema={"type": "integer"})
CHALLENGE = Header("`Bearer`, with `error` and `scope` when a credential was refused", True)


def problem_answer(
    status: int, description: str, headers: dict[str, Header] | None = None
) -> Answer:
    return Answer(status, description, Problem, (PROBLEM_JSON,), headers or {})


def outcome_answer(
    status: int, description: str, headers: dict[str, Header] | None = None
) -> Answer:
    return Answer(status, description, OperationOutcome, (FHIR_JSON,), headers or {})


UNAUTHENTICATED = "No `Authorization: Bearer` credential, or one this adapter does not know"
FORBIDDEN = "The credential lacks the scope this operation needs (named in `WWW-Authenticate`)"
STORE_BUSY = "The store is being migrated or cannot be reached: retry after `Retry-After`"
BUG = "The adapter failed (a bug): the body names a request id to find its log line by"

CLINIC_REFUSALS = (
    problem_answer(401, UNAUTHENTICATED, {"WWW-Authenticate": CHALLENGE}),
    problem_answer(403, FORBIDDEN, {"WWW-Authenticate": CHALLENGE}),
)
CLINIC_FAILURES = (
    problem_answer(503, STORE_BUSY, {"Retry-After": RETRY_AFTER}),
    problem_answer(500, BUG),
)
FHIR_UNAUTHENTICATED = outcome_answer(401, UNAUTHENTICATED, {"WWW-Authenticate": CHALLENGE})
NOT_ACCEPTABLE = outcome_answer(
    406, "A format other than JSON was asked for (`_format` or `Accept`)"
)
FHIR_REFUSALS = (
    FHIR_UNAUTHENTICATED,
    outcome_answer(
        403,
        "The credential may not read this resource type (a SMART `system/` scope, "
        "or `clinic/fhir.read`)",
        {"WWW-Authenticate": CHALLENGE},
    ),
    NOT_ACCEPTABLE,
)
FHIR_FAILURES = (
    outcome_answer(503, STORE_BUSY, {"Retry-After": RETRY_AFTER}),
    outcome_answer(500, BUG),
)

RECEIPT_HEADERS = {
    "Location": Header("The submission's status URL", required=True),
    "Idempotent-Replayed": Header(
        "`true` when this is the stored answer of an earlier request "
        "with the same `Idempotency-Key` and body"
    ),
}


def receipts(what: str) -> tuple[Answer, ...]:
    return (
        Answer(
            201,
            f"Accepted: {what} created at least one resource (a first receipt, or a "
            "resend adding records)",
            Receipt,
            headers=RECEIPT_HEADERS,
        ),
        Answer(
            200,
            f"Accepted: {what} created nothing (an identical resend changes nothing)",
            Receipt,
            headers=RECEIPT_HEADERS,
        ),
        problem_answer(
            400,
            "The body is not sound UTF-8 JSON (not JSON, duplicate keys, NaN, nested "
            "too deeply, ...), or the `Idempotency-Key` header is unusable",
        ),
        *CLINIC_REFUSALS,
        problem_answer(
            409,
            "Refused as it stands: a request with the same `Idempotency-Key` is still "
            "running (retry after `Retry-After`), or the document's ids break the identity "
            "rules: an encounter sent before for another patient, a record id of another "
            "encounter, or (shared namespace) an id another tenant sent first; `errors` "
            "names each field and its id",
            {"Retry-After": RETRY_AFTER},
        ),
        problem_answer(413, "The body is larger than ADAPTER_MAX_BODY_BYTES"),
        problem_answer(415, "The body is not declared as `application/json` (UTF-8)"),
        problem_answer(
            422,
            "The document breaks the clinic contract: `errors` names every bad field "
            "(or the `Idempotency-Key` was first used with another body)",
        ),
        *CLINIC_FAILURES,
    )


IDEMPOTENCY_KEY: Schema = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: the same key with the byte-identical body gets the "
    "first answer again (kept for ADAPTER_IDEMPOTENCY_TTL_HOURS, per tenant); the same key "
    "with another body is refused (422)",
    # What `parse_key` takes: a quoted key, or a bare one that neither starts with a quote
    # nor ends with a space (which the parser would drop).
    "schema": {
        "type": "string",
        "pattern": r'^(?:"[\x21-\x7e][\x20-\x7e]{0,254}"'
        r"|[\x21\x23-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?)$",
    },
}


def record_post(record: str, path: str) -> tuple[tuple[str, str], Operation]:
    return ("post", f"/clinic/{path}"), Operation(
        summary=f"Send one {record} as it happens",
        description=f"One {record} of an encounter the clinic sent before, with its "
        "`encounter_id` and `patient_mrn`; it is mapped to FHIR with the stored encounter's "
        "providers, stored, and queued for the EHR. A resend replaces only this record's "
        "resources. 409 names `patient_mrn` or `encounter_id` when the clinic never sent "
        "them: send the encounter first. Scope `clinic/encounters.write`.",
        answers=receipts(f"the {record}"),
        parameters=(IDEMPOTENCY_KEY,),
    )


# -- the FHIR faces' parameters -------------------------------------------------------------


def path_type(types: tuple[str, ...] = SERVED_TYPES) -> Schema:
    return {
        "in": "path",
        "name": "resource_type",
        "required": True,
        "description": "A resource type this adapter serves",
        "schema": {"type": "string", "enum": list(types)},
    }


def path_parameter(name: str, what: str, pattern: str | None = None) -> Schema:
    schema: Schema = (
        {"type": "string"} if pattern is None else {"type": "string", "pattern": pattern}
    )
    return {"in": "path", "name": name, "required": True, "description": what, "schema": schema}


def query_parameter(name: str, description: str, schema: Schema) -> Schema:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": schema,
    }


FORMAT = query_parameter(
    "_format",
    "The answer's media type: `json` or `application/fhir+json` (the default), or "
    "`application/json`; anything else is 406",
    {"type": "string", "enum": ["json", FHIR_JSON, PLAIN_JSON]},
)
COUNT = query_parameter(
    "_count",
    "Entries per page (default 50; larger than 1000 counts as 1000)",
    {"type": "integer", "minimum": 0},
)
SINCE = query_parameter(
    "_since",
    "Only what changed at or after this date or instant",
    {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]},
)
LOGICAL_ID = path_parameter("logical_id", "The resource's logical id", FHIR_ID)
READ_ANSWERS = (
    Answer(
        200,
        "The resource's current version, with `ETag` and `Last-Modified`",
        FhirResource,
        FHIR_MEDIA,
        {
            "ETag": Header('`W/"<version>"`', True),
            "Last-Modified": Header("When the store changed it", True),
        },
    ),
    Answer(304, "Not modified since the `If-None-Match` / `If-Modified-Since` given"),
    outcome_answer(400, "The id is not a FHIR id (`[A-Za-z0-9-.]{1,64}`)"),
    *FHIR_REFUSALS,
    outcome_answer(
        404, "No such resource for the caller's tenant (another tenant's looks the same)"
    ),
    outcome_answer(410, "The resource (or this version of it) was deleted"),
    *FHIR_FAILURES,
)
BUNDLE_ANSWERS = (
    *FHIR_REFUSALS,
    *FHIR_FAILURES,
)
OTHER_PARAMETERS: Schema = {
    "in": "query",
    "name": "other",
    "style": "form",
    "explode": True,
    "required": False,
    "description": "Any other parameter (a modifier such as `code:text` included) is not "
    "supported here: it is refused with 400 naming it, or, under `Prefer: handling=lenient`, "
    "ignored and named in an OperationOutcome entry of the Bundle (`search.mode` `outcome`)",
    "schema": {
        "type": "object",
        "propertyNames": {"not": {"enum": list(KNOWN_PARAMETERS)}},
        "additionalProperties": {"type": "string"},
    },
}
SEARCH_PARAMETERS_TEXT = (
    " Besides the parameters listed, the type's R4 search parameters by R4's names (each "
    "in the CapabilityStatement with its definition; e.g. `identifier`, `patient`, `code`, "
    "`date`, `context`, `authoredon`, `name`, `birthdate`), their modifiers (`:missing`, "
    "`:not`, `:exact`, `:contains`, `:identifier`, `:[type]`), chains (`patient.identifier`, "
    "`subject:Patient.identifier`, `encounter.identifier`), `_has`, `_lastUpdated`, "
    "`_include`, `_revinclude`, `_elements`; see docs/fhir-api.md. A parameter, modifier, "
    "chain or prefix not supported is refused (400, naming it), or, under `Prefer: "
    "handling=lenient`, ignored and reported in an OperationOutcome entry. Paging: follow "
    "the `next` link (its `_cursor` is signed)."
)
SEARCH_FORM = request_body(
    "application/x-www-form-urlencoded",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "_id": {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"},
            "_count": {"type": "integer", "minimum": 0},
        },
    },
    "The search parameters, form-encoded as in a GET's query string: any the GET takes "
    "(only a few are listed here)",
    required=False,
)


def _input(name: str, value: str, schema: Schema) -> Schema:
    """One `Parameters.parameter` of `$everything`: its name and its one value."""
    return {
        "type": "object",
        "required": ["name", value],
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "enum": [name]}, value: schema},
    }


_EVERYTHING_INPUTS = [
    _input("_count", "valueInteger", {"type": "integer", "minimum": 0, "maximum": 1000}),
    _input("_type", "valueCode", {"type": "string", "enum": list(SERVED_TYPES)}),
    _input("start", "valueDate", {"type": "string", "format": "date"}),
    _input("end", "valueDate", {"type": "string", "format": "date"}),
    _input("_since", "valueInstant", {"type": "string", "format": "date-time"}),
]
PARAMETERS_BODY = request_body(
    FHIR_JSON,
    {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Parameters"]},
            "parameter": {"type": "array", "items": {"oneOf": _EVERYTHING_INPUTS}},
        },
    },
    "A FHIR `Parameters` resource: `_type`, `start`, `end`, `_since`, `_count`, each with "
    "one simple value",
    required=False,
)


def fhir_operation(
    summary: str,
    description: str,
    *answers: Answer,
    parameters: tuple[Schema, ...] = (),
    secured: bool = True,
) -> Operation:
    """A `/fhir` operation; a GET takes `_format` (a POST may too, undocumented here: its
    body is what a fuzzer should vary)."""
    return Operation(summary, description, answers, secured, (*parameters, FORMAT))


def fhir_post(
    summary: str, description: str, *answers: Answer, parameters: tuple[Schema, ...] = ()
) -> Operation:
    return Operation(summary, description, answers, True, parameters)
