"""Pure translation between the clinic's records and FHIR R4 resources.

No I/O, no clock, no web framework, no database: records in, FHIR JSON out (and
back). The adapter service imports this package; this package never imports it.

    contract/           the clinic contract as strict models, and its parsers
    kinds.py            the record kinds sent alone, each with its model, parser and mappers
    encounter/          a whole encounter document to FHIR and back; field coverage
    intake/ infusion/ vitals/ medication_review/
                        one package per record kind: its mappers, forward and reverse
    care/               consent, discharge, treatment course, the Spravato REMS record
    common/             FHIR building blocks they share: datatypes, identity, lookups,
                        narratives, people, Provenance, transaction Bundles, canonical JSON
    terminology/        the code tables (CSV, reviewable without Python) and their loader
    protocol/           the clinic's protocol as data (TOML, each rule with its source) and
                        its rules: what is refused, what raises a DetectedIssue
    alerts/             which Flags a newer assessment of the patient ends
    claims.py           which field of a document each identifier comes from
    context.py          what a mapping needs besides the record (namespace, tenant, policy)
    errors.py           the error tree
    jsontypes.py        the JSON types mapped resources are made of

The public face is `__all__` below (a test pins it). Beyond it, these are public too, for
finer needs, and the only other places the adapter imports from (a test checks that):
the subpackages `mappings.contract`, `mappings.common` and `mappings.terminology` (any of
their modules), the modules `mappings.kinds`, `mappings.claims`, `mappings.context`,
`mappings.errors` and `mappings.jsontypes`, and the `__all__` of each record-kind package
(`mappings.encounter`, `.intake`, `.infusion`, `.vitals`, `.medication_review`, `.care`),
and the `__all__` of `mappings.protocol` and `mappings.alerts`. The modules inside those
packages are their own business.
"""

from __future__ import annotations

from mappings.claims import Claim, claim_of, encounter_claims, record_claims
from mappings.common.bundle import transaction_bundle
from mappings.common.serialize import dumps
from mappings.context import MappingContext, SecurityLabels, VitalThresholds
from mappings.contract import (
    EncounterSubmission,
    parse_infusion_submission,
    parse_intake_submission,
    parse_medication_review_submission,
    parse_submission,
    parse_vitals_submission,
)
from mappings.encounter import (
    field_coverage,
    map_submission,
    round_trip_differences,
    unmap_submission,
)
from mappings.errors import ContractViolation, FieldError, MappingError, UnknownCode
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.kinds import RECORD_KINDS, Record, RecordKind, record_kind

__all__ = [
    "RECORD_KINDS",
    "Claim",
    "ContractViolation",
    "EncounterSubmission",
    "FieldError",
    "JsonObject",
    "JsonValue",
    "MappingContext",
    "MappingError",
    "Record",
    "RecordKind",
    "Resource",
    "SecurityLabels",
    "UnknownCode",
    "VitalThresholds",
    "claim_of",
    "dumps",
    "encounter_claims",
    "field_coverage",
    "map_submission",
    "parse_infusion_submission",
    "parse_intake_submission",
    "parse_medication_review_submission",
    "parse_submission",
    "parse_vitals_submission",
    "record_claims",
    "record_kind",
    "round_trip_differences",
    "transaction_bundle",
    "unmap_submission",
]
