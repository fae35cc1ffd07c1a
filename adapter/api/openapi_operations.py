"""What every operation of the service needs, answers and means, for `/openapi.json`.

One entry per (method, path) of the app (see `adapter.api.openapi_doc`). The answers are
every status the route, its dependencies and the middleware really send; docs/clinic-api.md
and docs/fhir-api.md say the same for a person.
"""

from __future__ import annotations

from adapter.api.answer_models import (
    Bundle,
    CapabilityStatement,
    FhirResource,
    Health,
    OperationOutcome,
    Problem,
    Readiness,
    Receipt,
    SubmissionStatus,
)
from adapter.api.fhir_params import KNOWN_PARAMETERS
from adapter.api.fhir_types import SERVED_TYPES
from adapter.api.openapi_doc import (
    FHIR_JSON,
    PLAIN_JSON,
    PROBLEM_JSON,
    Answer,
    Header,
    Operation,
    Schema,
)
from adapter.api.patient_schema import PatientRecordView

FHIR_MEDIA = (FHIR_JSON, PLAIN_JSON)
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
EVERYTHING_TYPES = ("Patient", "Encounter")

# -- answers shared by several operations ---------------------------------------------------

RETRY_AFTER = Header("Seconds to wait before trying again", schema={"type": "integer"})
CHALLENGE = Header("`Bearer`, with `error` and `scope` when a credential was refused", True)


def _problem(status: int, description: str, headers: dict[str, Header] | None = None) -> Answer:
    return Answer(status, description, Problem, (PROBLEM_JSON,), headers or {})


def _outcome(status: int, description: str, headers: dict[str, Header] | None = None) -> Answer:
    return Answer(status, description, OperationOutcome, (FHIR_JSON,), headers or {})


UNAUTHENTICATED = "No `Authorization: Bearer` credential, or one this adapter does not know"
FORBIDDEN = "The credential lacks the scope this operation needs (named in `WWW-Authenticate`)"
STORE_BUSY = "The store is being migrated or cannot be reached: retry after `Retry-After`"
BUG = "The adapter failed (a bug): the body names a request id to find its log line by"

CLINIC_REFUSALS = (
    _problem(401, UNAUTHENTICATED, {"WWW-Authenticate": CHALLENGE}),
    _problem(403, FORBIDDEN, {"WWW-Authenticate": CHALLENGE}),
)
CLINIC_FAILURES = (
    _problem(503, STORE_BUSY, {"Retry-After": RETRY_AFTER}),
    _problem(500, BUG),
)
FHIR_REFUSALS = (
    _outcome(401, UNAUTHENTICATED, {"WWW-Authenticate": CHALLENGE}),
    _outcome(
        403,
        "The credential may not read this resource type (a SMART `system/` scope, "
        "or `clinic/fhir.read`)",
        {"WWW-Authenticate": CHALLENGE},
    ),
    _outcome(406, "A format other than JSON was asked for (`_format` or `Accept`)"),
)
FHIR_FAILURES = (
    _outcome(503, STORE_BUSY, {"Retry-After": RETRY_AFTER}),
    _outcome(500, BUG),
)

RECEIPT_HEADERS = {
    "Location": Header("The submission's status URL", required=True),
    "Idempotent-Replayed": Header(
        "`true` when this is the stored answer of an earlier request "
        "with the same `Idempotency-Key` and body"
    ),
}


def _receipts(what: str) -> tuple[Answer, ...]:
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
        _problem(
            400,
            "The body is not sound UTF-8 JSON (not JSON, duplicate keys, NaN, nested "
            "too deeply, ...), or the `Idempotency-Key` header is unusable",
        ),
        *CLINIC_REFUSALS,
        _problem(
            409,
            "Refused as it stands: a request with the same `Idempotency-Key` is still "
            "running (retry after `Retry-After`), or the document conflicts with what "
            "the clinic sent before (`errors` names the field)",
            {"Retry-After": RETRY_AFTER},
        ),
        _problem(413, "The body is larger than ADAPTER_MAX_BODY_BYTES"),
        _problem(415, "The body is not declared as `application/json` (UTF-8)"),
        _problem(
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
    "schema": {"type": "string", "pattern": r"^[\x21-\x7e][\x20-\x7e]{0,254}$"},
}


def _record_post(record: str, path: str) -> tuple[tuple[str, str], Operation]:
    return ("post", f"/clinic/{path}"), Operation(
        summary=f"Send one {record} as it happens",
        description=f"One {record} of an encounter the clinic sent before, with its "
        "`encounter_id` and `patient_mrn`; it is mapped to FHIR with the stored encounter's "
        "providers, stored, and queued for the EHR. A resend replaces only this record's "
        "resources. 409 names `patient_mrn` or `encounter_id` when the clinic never sent "
        "them: send the encounter first. Scope `clinic/encounters.write`.",
        answers=_receipts(f"the {record}"),
        parameters=(IDEMPOTENCY_KEY,),
    )


# -- the FHIR faces' parameters -------------------------------------------------------------


def _path_type(types: tuple[str, ...] = SERVED_TYPES) -> Schema:
    return {
        "in": "path",
        "name": "resource_type",
        "required": True,
        "description": "A resource type this adapter serves",
        "schema": {"type": "string", "enum": list(types)},
    }


def _path_id(name: str, what: str) -> Schema:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": what,
        "schema": {"type": "string", "pattern": FHIR_ID},
    }


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": schema,
    }


FORMAT = _query(
    "_format",
    "The answer's media type: `json` or `application/fhir+json` (the default), or "
    "`application/json`; anything else is 406",
    {"type": "string", "enum": ["json", FHIR_JSON, PLAIN_JSON]},
)
COUNT = _query(
    "_count",
    "Entries per page (default 50; larger than 1000 counts as 1000)",
    {"type": "integer", "minimum": 0},
)
SINCE = _query(
    "_since",
    "Only what changed at or after this date or instant",
    {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]},
)
LOGICAL_ID = _path_id("logical_id", "The resource's logical id")
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
    _outcome(400, "The id is not a FHIR id (`[A-Za-z0-9-.]{1,64}`)"),
    *FHIR_REFUSALS,
    _outcome(404, "No such resource for the caller's tenant (another tenant's looks the same)"),
    _outcome(410, "The resource (or this version of it) was deleted"),
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
    "supported here: it is ignored and named in an OperationOutcome entry of the Bundle "
    "(`search.mode` `outcome`), or refused with 400 under `Prefer: handling=strict`",
    "schema": {
        "type": "object",
        "propertyNames": {"not": {"enum": list(KNOWN_PARAMETERS)}},
        "additionalProperties": {"type": "string"},
    },
}
SEARCH_PARAMETERS_TEXT = (
    " Besides the parameters listed, the type's own search parameters (`identifier`, "
    "`patient`, `subject`, `encounter`, `code`, `category`, `status`, `date`, "
    "`_lastUpdated`, `_include`, `_revinclude`; see docs/fhir-api.md): a parameter the type "
    "lacks is ignored and reported in an OperationOutcome entry, or refused (400) under "
    "`Prefer: handling=strict`. Paging: follow the `next` link (its `_cursor` is signed)."
)


def _fhir(
    summary: str,
    description: str,
    *answers: Answer,
    parameters: tuple[Schema, ...] = (),
    secured: bool = True,
) -> Operation:
    return Operation(summary, description, answers, secured, (*parameters, FORMAT))


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("get", "/health"): Operation(
        "Liveness: the process answers",
        "Answers 200 as long as the process serves HTTP; it checks nothing else (see /ready).",
        (Answer(200, "The process is alive", Health), _problem(500, BUG)),
        is_secured=False,
    ),
    ("get", "/ready"): Operation(
        "Readiness: the database and the EHR answer",
        "The database answers `SELECT 1` and the EHR answers `GET /metadata` with a "
        "CapabilityStatement (an EHR not configured counts as ready). Each check is named with "
        "its status and latency; 503 names the one that is down.",
        (
            Answer(200, "Ready: no check is down", Readiness),
            Answer(503, "Not ready: at least one check is down", Readiness),
            _problem(500, BUG),
        ),
        is_secured=False,
    ),
    ("post", "/clinic/encounters"): Operation(
        summary="Send one encounter document",
        description="One clinic encounter (patient, providers, intake, infusion, vitals, "
        "medication review) in the clinic contract's JSON. It is validated, mapped to FHIR R4, "
        "stored and queued for the EHR in one transaction; the receipt names every FHIR "
        "resource it created, updated, left unchanged or deleted, and where to follow its "
        "push (`status_url`). Sending the same encounter again updates it. Scope "
        "`clinic/encounters.write`.",
        answers=_receipts("the document"),
        parameters=(IDEMPOTENCY_KEY,),
    ),
    **dict(
        [
            _record_post("intake screening", "intake-screenings"),
            _record_post("infusion", "infusions"),
            _record_post("vitals reading", "vitals"),
            _record_post("medication review", "medication-reviews"),
        ]
    ),
    ("get", "/clinic/submissions/{submission_id}"): Operation(
        summary="Follow a submission to the EHR",
        description="Where a submission is: `stored` (waiting, retries included), `pushed` "
        "(with the EHR's references), `failed` (the EHR refused it for good; `reason` holds "
        "its status and diagnostics), `conflict` (the EHR's copy changed since ours) or "
        "`unchanged`. Scope `clinic/submissions.read`.",
        answers=(
            Answer(200, "The submission's status", SubmissionStatus),
            *CLINIC_REFUSALS,
            _problem(404, "No such submission for the caller's clinic"),
            *CLINIC_FAILURES,
        ),
        parameters=(
            {
                "in": "path",
                "name": "submission_id",
                "required": True,
                "description": "The `submission_id` of a receipt",
                "schema": {"type": "string", "pattern": r"^[0-9]{1,18}$"},
            },
        ),
    ),
    ("get", "/clinic/patients/{mrn}"): Operation(
        summary="A patient's current record",
        description="The patient as the clinic and the EHR now hold them: the latest "
        "medication review, current medications and allergies (the EHR's own included), each "
        "item naming its source and its FHIR resource. Scope `clinic/patients.read`.",
        answers=(
            Answer(200, "The patient's record", PatientRecordView),
            *CLINIC_REFUSALS,
            _problem(404, "No such patient for the caller's clinic (or not an MRN)"),
            *CLINIC_FAILURES,
        ),
        parameters=(
            {
                "in": "path",
                "name": "mrn",
                "required": True,
                "description": "The patient's MRN, as the clinic sent it",
                "schema": {"type": "string"},
            },
        ),
    ),
    ("get", "/admin/AuditEvent"): _fhir(
        "Search the audit trail",
        "The caller's tenant's audit records as FHIR AuditEvents, newest first: who called "
        "what, when, with which status (never content or parameter values). `date` "
        "(repeatable, with prefix `ge`, `gt`, `le`, `lt`, `eq`), `agent`, `outcome`, `_count`; "
        "the `next` link carries a `_cursor`. Scope `admin/AuditEvent.rs`.",
        Answer(200, "A searchset Bundle of AuditEvents", Bundle, FHIR_MEDIA),
        _outcome(400, "An unknown parameter or a bad value (named)"),
        *BUNDLE_ANSWERS,
        parameters=(
            _query(
                "agent", "Who, as recorded: `key:<8 hex>` or `jwt:<client>`", {"type": "string"}
            ),
            _query(
                "outcome",
                "`0` answered, `4` refused, `8` failed",
                {"type": "string", "enum": ["0", "4", "8"]},
            ),
            _query(
                "_count",
                "Page size (default 100): 0 counts as 1, more than 1000 as 1000",
                {"type": "integer", "minimum": 0, "maximum": 999_999_999_999},
            ),
        ),
    ),
    ("get", "/fhir/metadata"): _fhir(
        "The FHIR CapabilityStatement",
        "What this read-only FHIR R4 server offers: every type, its interactions, search "
        "parameters, `_include`/`_revinclude` values and `$everything`. No credential needed.",
        Answer(200, "The CapabilityStatement", CapabilityStatement, FHIR_MEDIA),
        _outcome(406, "A format other than JSON was asked for (`_format` or `Accept`)"),
        _outcome(500, BUG),
        secured=False,
    ),
    ("get", "/fhir/{resource_type}/{logical_id}"): _fhir(
        "Read a resource",
        "The current version of a resource of the caller's tenant, with `ETag` and "
        "`Last-Modified` (304 on a matching `If-None-Match`/`If-Modified-Since`).",
        *READ_ANSWERS,
        parameters=(_path_type(), LOGICAL_ID),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/_history/{version_id}"): _fhir(
        "Read one version of a resource",
        "One version of a resource; 410 when that version is its deletion.",
        *READ_ANSWERS,
        parameters=(_path_type(), LOGICAL_ID, _path_id("version_id", "The version's id")),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/_history"): _fhir(
        "A resource's history",
        "Every version of a resource, newest first, in a `history` Bundle; a deletion is an "
        "entry without `resource`.",
        Answer(200, "A history Bundle", Bundle, FHIR_MEDIA),
        _outcome(400, "The id is not a FHIR id"),
        _outcome(404, "No such resource for the caller's tenant"),
        *BUNDLE_ANSWERS,
        parameters=(_path_type(), LOGICAL_ID),
    ),
    ("get", "/fhir/{resource_type}/_history"): _fhir(
        "A resource type's history",
        "Every version of every resource of the type, newest first, paged like a search.",
        Answer(200, "A history Bundle", Bundle, FHIR_MEDIA),
        _outcome(
            400,
            "A bad `_since`, `_count` or `_cursor` (or, under `Prefer: "
            "handling=strict`, an unknown parameter)",
        ),
        _outcome(404, "Not a type this adapter serves"),
        *BUNDLE_ANSWERS,
        parameters=(_path_type(), SINCE, COUNT),
    ),
    ("get", "/fhir/{resource_type}"): _fhir(
        "Search a resource type",
        "The current resources of the caller's tenant that match, in a `searchset` Bundle "
        "with `total` and `self`/`next`/`previous` links." + SEARCH_PARAMETERS_TEXT,
        Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
        _outcome(
            400,
            "A bad value of a known parameter (named, never repeated), a bad "
            "`_cursor`, a search beyond the cost limits, or an unknown parameter under "
            "`Prefer: handling=strict`",
        ),
        _outcome(404, "Not a type this adapter serves"),
        *BUNDLE_ANSWERS,
        parameters=(
            _path_type(),
            _query(
                "_id",
                "Logical ids, `,` between alternatives",
                {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}(,[A-Za-z0-9\-.]{1,64})*$"},
            ),
            COUNT,
            _query(
                "_sort",
                "`_lastUpdated` or `date`, `-` for descending",
                {"type": "string", "enum": ["_lastUpdated", "-_lastUpdated", "date", "-date"]},
            ),
            _query(
                "_summary",
                "`count`: the total only",
                {"type": "string", "enum": ["count", "false"]},
            ),
        ),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/$everything"): _fhir(
        "Everything about a patient or an encounter",
        "The resource, everything citing it, their Provenances and what all of them cite, in "
        "a `searchset` Bundle paged like a search.",
        Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
        _outcome(400, "The id is not a FHIR id, or a bad `_since`, `_count` or `_cursor`"),
        _outcome(404, "No such Patient or Encounter for the caller's tenant"),
        *BUNDLE_ANSWERS,
        parameters=(_path_type(EVERYTHING_TYPES), LOGICAL_ID, SINCE, COUNT),
    ),
}
