"""What every operation of the service needs, answers and means, for `/openapi.json`.

One entry per (method, path) of the app (see `adapter.api.openapi.document`); the answers and
parameters several share are in `adapter.api.openapi.answers`. The answers are every status
the route, its dependencies and the middleware really send; docs/clinic-api.md and
docs/fhir-api.md say the same for a person.
"""

from __future__ import annotations

from adapter.api.clinic.answer_models import (
    Bundle,
    CapabilityStatement,
    FhirResource,
    Health,
    Readiness,
    SubmissionStatus,
)
from adapter.api.clinic.patient_schema import PatientRecordView
from adapter.api.fhir.resource_types import SERVED_TYPES
from adapter.api.openapi.answers import (
    BUG,
    BUNDLE_ANSWERS,
    CLINIC_FAILURES,
    CLINIC_REFUSALS,
    COUNT,
    EVERYTHING_TYPES,
    FHIR_ID,
    FHIR_MEDIA,
    IDEMPOTENCY_KEY,
    LOGICAL_ID,
    NOT_ACCEPTABLE,
    READ_ANSWERS,
    SEARCH_PARAMETERS_TEXT,
    SINCE,
    fhir_operation,
    fhir_post,
    outcome_answer,
    path_parameter,
    path_type,
    problem_answer,
    query_parameter,
    receipts,
    record_post,
)
from adapter.api.openapi.document import Answer, Operation
from adapter.api.openapi.subscription_operations import SUBSCRIPTION_OPERATIONS

SEARCH_ANSWERS = (
    Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
    outcome_answer(
        400,
        "A bad value of a known parameter (named, never repeated), a bad `_cursor`, a "
        "search beyond the cost limits, or a parameter, modifier, chain or prefix not "
        "supported (unless `Prefer: handling=lenient`)",
    ),
    outcome_answer(404, "Not a type this adapter serves"),
    *BUNDLE_ANSWERS,
)
EVERYTHING_TEXT = (
    "The resource, everything citing it, their Provenances and what all of them cite, in "
    "a `searchset` Bundle paged like a search. `_type` keeps the types named; `start` and "
    "`end` keep, of the resources with a clinical date, those whose date meets the "
    "period; `_count=0` gives the total only."
)
EVERYTHING_ANSWERS = (
    Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
    outcome_answer(
        400,
        "The id is not a FHIR id, a bad `_since`, `_count`, `_type`, `start`, `end` or "
        "`_cursor`, or an unknown parameter (unless `Prefer: handling=lenient`)",
    ),
    outcome_answer(404, "No such Patient or Encounter for the caller's tenant"),
    *BUNDLE_ANSWERS,
)
_TYPES = "|".join(SERVED_TYPES)
EVERYTHING_MORE = (
    query_parameter(
        "_type",
        "Resource types to return, `,` between them",
        {"type": "string", "pattern": f"^({_TYPES})(,({_TYPES}))*$"},
    ),
    query_parameter("start", "Care dates from this date", {"type": "string", "format": "date"}),
    query_parameter("end", "Care dates up to this date", {"type": "string", "format": "date"}),
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("get", "/health"): Operation(
        "Liveness: the process answers",
        "Answers 200 as long as the process serves HTTP; it checks nothing else (see /ready).",
        (Answer(200, "The process is alive", Health), problem_answer(500, BUG)),
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
            problem_answer(500, BUG),
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
        answers=receipts("the document"),
        parameters=(IDEMPOTENCY_KEY,),
    ),
    **dict(
        [
            record_post("intake screening", "intake-screenings"),
            record_post("infusion", "infusions"),
            record_post("vitals reading", "vitals"),
            record_post("medication review", "medication-reviews"),
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
            problem_answer(404, "No such submission for the caller's clinic"),
            *CLINIC_FAILURES,
        ),
        parameters=(
            path_parameter(
                "submission_id",
                "The `submission_id` of a receipt",
                r"^([0-9a-f]{32}|[0-9]{1,18})$",
            ),
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
            problem_answer(404, "No such patient for the caller's clinic (or not an MRN)"),
            *CLINIC_FAILURES,
        ),
        parameters=(path_parameter("mrn", "The patient's MRN, as the clinic sent it"),),
    ),
    ("get", "/admin/AuditEvent"): fhir_operation(
        "Search the audit trail",
        "The caller's tenant's audit records as FHIR AuditEvents, newest first: who called "
        "what, when, with which status (never content or parameter values). `date` "
        "(repeatable, with prefix `ge`, `gt`, `le`, `lt`, `eq`), `agent`, `outcome`, `_count`; "
        "the `next` link carries a `_cursor`. Scope `admin/AuditEvent.rs`.",
        Answer(200, "A searchset Bundle of AuditEvents", Bundle, FHIR_MEDIA),
        outcome_answer(400, "An unknown parameter or a bad value (named)"),
        *BUNDLE_ANSWERS,
        parameters=(
            query_parameter(
                "agent", "Who, as recorded: `key:<8 hex>` or `jwt:<client>`", {"type": "string"}
            ),
            query_parameter(
                "outcome",
                "`0` answered, `4` refused, `8` failed",
                {"type": "string", "enum": ["0", "4", "8"]},
            ),
            query_parameter(
                "_count",
                "Page size (default 100): 0 counts as 1, more than 1000 as 1000",
                {"type": "integer", "minimum": 0, "maximum": 999_999_999_999},
            ),
        ),
    ),
    ("get", "/admin/AuditEvent/{event_id}"): fhir_operation(
        "Read one audit event",
        "One record of the caller's tenant's audit trail as a FHIR AuditEvent: the `fullUrl` "
        "each entry of `GET /admin/AuditEvent` names. Another tenant's event answers as one "
        "that does not exist. Scope `admin/AuditEvent.rs`.",
        Answer(200, "The AuditEvent", FhirResource, FHIR_MEDIA),
        outcome_answer(404, "No such event for the caller's tenant"),
        *BUNDLE_ANSWERS,
        parameters=(
            path_parameter("event_id", "The event's id (32 hex digits)", "^[0-9a-f]{32}$"),
        ),
    ),
    ("get", "/fhir/metadata"): fhir_operation(
        "The FHIR CapabilityStatement",
        "What this read-only FHIR R4 server offers: every type, its interactions, search "
        "parameters, `_include`/`_revinclude` values and `$everything`. No credential needed.",
        Answer(200, "The CapabilityStatement", CapabilityStatement, FHIR_MEDIA),
        NOT_ACCEPTABLE,
        outcome_answer(500, BUG),
        secured=False,
    ),
    ("get", "/fhir/{resource_type}/{logical_id}"): fhir_operation(
        "Read a resource",
        "The current version of a resource of the caller's tenant, with `ETag` and "
        "`Last-Modified` (304 on a matching `If-None-Match`/`If-Modified-Since`).",
        *READ_ANSWERS,
        parameters=(path_type(), LOGICAL_ID),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/_history/{version_id}"): fhir_operation(
        "Read one version of a resource",
        "One version of a resource; 410 when that version is its deletion.",
        *READ_ANSWERS,
        parameters=(
            path_type(),
            LOGICAL_ID,
            path_parameter("version_id", "The version's id", FHIR_ID),
        ),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/_history"): fhir_operation(
        "A resource's history",
        "Every version of a resource, newest first, in a `history` Bundle; a deletion is an "
        "entry without `resource`.",
        Answer(200, "A history Bundle", Bundle, FHIR_MEDIA),
        outcome_answer(400, "The id is not a FHIR id"),
        outcome_answer(404, "No such resource for the caller's tenant"),
        *BUNDLE_ANSWERS,
        parameters=(path_type(), LOGICAL_ID),
    ),
    ("get", "/fhir/{resource_type}/_history"): fhir_operation(
        "A resource type's history",
        "Every version of every resource of the type, newest first, paged like a search.",
        Answer(200, "A history Bundle", Bundle, FHIR_MEDIA),
        outcome_answer(
            400,
            "A bad `_since`, `_count` or `_cursor`, or an unknown parameter (unless "
            "`Prefer: handling=lenient`)",
        ),
        outcome_answer(404, "Not a type this adapter serves"),
        *BUNDLE_ANSWERS,
        parameters=(path_type(), SINCE, COUNT),
    ),
    ("get", "/fhir/{resource_type}"): fhir_operation(
        "Search a resource type",
        "The current resources of the caller's tenant that match, in a `searchset` Bundle "
        "with `total` and `self`/`next`/`previous` links." + SEARCH_PARAMETERS_TEXT,
        *SEARCH_ANSWERS,
        parameters=(
            path_type(),
            query_parameter(
                "_id",
                "Logical ids, `,` between alternatives",
                {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}(,[A-Za-z0-9\-.]{1,64})*$"},
            ),
            COUNT,
            query_parameter(
                "_sort",
                "`_lastUpdated` or `date`, `-` for descending",
                {"type": "string", "enum": ["_lastUpdated", "-_lastUpdated", "date", "-date"]},
            ),
            query_parameter(
                "_summary",
                "`count`: the total only; `true`, `text`, `data`: each resource subsetted "
                "(tagged `SUBSETTED`)",
                {"type": "string", "enum": ["true", "text", "data", "count", "false"]},
            ),
            query_parameter(
                "_elements",
                "Top-level elements to keep, `,` between them (tagged `SUBSETTED`)",
                {"type": "string", "pattern": "^[A-Za-z]+(,[A-Za-z]+)*$"},
            ),
        ),
    ),
    ("post", "/fhir/{resource_type}/_search"): fhir_post(
        "Search a resource type by POST",
        "The same search as `GET /fhir/{resource_type}`, its parameters form-encoded in the "
        "body (and any in the query string): the same answer, the same limits; its links "
        "are the GET's." + SEARCH_PARAMETERS_TEXT,
        *SEARCH_ANSWERS,
        outcome_answer(415, "A body that is not `application/x-www-form-urlencoded`"),
        parameters=(path_type(),),
    ),
    ("get", "/fhir/{resource_type}/{logical_id}/$everything"): fhir_operation(
        "Everything about a patient or an encounter",
        EVERYTHING_TEXT,
        *EVERYTHING_ANSWERS,
        parameters=(path_type(EVERYTHING_TYPES), LOGICAL_ID, SINCE, COUNT, *EVERYTHING_MORE),
    ),
    ("post", "/fhir/{resource_type}/{logical_id}/$everything"): fhir_post(
        "Everything about a patient or an encounter, by POST",
        "The same as the GET, its parameters in a `Parameters` body (R4: operations by "
        "POST). " + EVERYTHING_TEXT,
        *EVERYTHING_ANSWERS,
        outcome_answer(415, "A body that is not FHIR JSON"),
        parameters=(path_type(EVERYTHING_TYPES), LOGICAL_ID),
    ),
    ("get", "/fhir/Patient/{logical_id}/{compartment_type}"): fhir_operation(
        "Search in a patient's compartment",
        "The search of `compartment_type` narrowed to the resources of the patient's "
        "compartment (as `patient=Patient/{id}`, or `subject`): the same answer as that "
        "search." + SEARCH_PARAMETERS_TEXT,
        *SEARCH_ANSWERS,
        parameters=(
            LOGICAL_ID,
            path_parameter("compartment_type", "A resource type of the patient compartment"),
        ),
    ),
    ("get", "/fhir/SearchParameter"): fhir_operation(
        "Our own search parameters",
        "The SearchParameter resources of the parameters this server keeps that R4 does not "
        "define, in a `searchset` Bundle; the CapabilityStatement names each as its "
        "`definition`. No credential needed.",
        Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
        NOT_ACCEPTABLE,
        outcome_answer(500, BUG),
        secured=False,
    ),
    ("get", "/fhir/SearchParameter/{logical_id}"): fhir_operation(
        "One of our own search parameters",
        "The SearchParameter resource a `definition` of the CapabilityStatement names "
        "(`{base}/SearchParameter/{Type}-{name}`). No credential needed.",
        Answer(200, "The SearchParameter", FhirResource, FHIR_MEDIA),
        outcome_answer(404, "No such SearchParameter"),
        NOT_ACCEPTABLE,
        outcome_answer(500, BUG),
        parameters=(LOGICAL_ID,),
        secured=False,
    ),
    **SUBSCRIPTION_OPERATIONS,
}
