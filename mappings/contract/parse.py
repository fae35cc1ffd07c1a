"""Entry points: raw JSON (bytes, text or an already-decoded mapping) to contract models.

Every function raises `mappings.errors.ContractViolation` listing every problem found,
never a pydantic error. JSON that the standard library would quietly accept but the
contract does not (duplicate keys, `NaN`/`Infinity`, unpaired surrogates) is reported with
the path of the offending key or value. So is a string (a value or a key) holding a control
character that FHIR strings do not allow (U+0000-U+001F but tab, line feed and carriage
return): a breach of the contract, not of JSON, so its violation is not `MalformedJson`.

No clock here: pass `today` to check that the birth date is not in the future (skipped
when None). Per-record submissions name providers the document does not carry: pass
`known_provider_ids` to check them (skipped when None; the adapter checks stored providers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import date
from typing import TypeVar

from pydantic import ValidationError

from mappings.contract import rules
from mappings.contract.base import ContractModel
from mappings.contract.models import EncounterSubmission
from mappings.contract.submissions import (
    InfusionProcedureSubmission,
    IntakeScreeningSubmission,
    MedicationReviewSubmission,
    VitalsObservationSubmission,
)
from mappings.contract.translate import field_errors, json_path
from mappings.errors import ContractViolation, FieldError

JsonInput = bytes | str | Mapping[str, object]


class MalformedJson(ValueError):
    """The cause of a `ContractViolation` whose document is not sound JSON: duplicate keys,
    `NaN`/`Infinity`, unpaired surrogates, a number beyond Python's 4,300-digit limit.
    Callers answering HTTP tell it from a contract breach by it (400, not 422)."""


Model = TypeVar("Model", bound=ContractModel)
Path = list[int | str]


def parse_submission(data: JsonInput, *, today: date | None = None) -> EncounterSubmission:
    """A whole encounter (`POST /clinic/encounters`)."""
    document, problems = load_document(data)
    try:
        return _validate(EncounterSubmission, document, problems, {"today": today})
    except ContractViolation as violation:
        errors = _with_raw_references(violation.errors, document)
        raise ContractViolation(errors) from violation.__cause__


def parse_intake_submission(
    data: JsonInput, *, known_provider_ids: Collection[str] | None = None
) -> IntakeScreeningSubmission:
    """One intake screening (`POST /clinic/intake-screenings`)."""
    return _parse_record(IntakeScreeningSubmission, data, known_provider_ids)


def parse_infusion_submission(
    data: JsonInput, *, known_provider_ids: Collection[str] | None = None
) -> InfusionProcedureSubmission:
    """One infusion (`POST /clinic/infusions`); see `known_provider_ids` above."""
    return _parse_record(InfusionProcedureSubmission, data, known_provider_ids)


def parse_vitals_submission(
    data: JsonInput, *, known_provider_ids: Collection[str] | None = None
) -> VitalsObservationSubmission:
    """One set of vital signs (`POST /clinic/vitals`)."""
    return _parse_record(VitalsObservationSubmission, data, known_provider_ids)


def parse_medication_review_submission(
    data: JsonInput, *, known_provider_ids: Collection[str] | None = None
) -> MedicationReviewSubmission:
    """One medication review (`POST /clinic/medication-reviews`); see `known_provider_ids`."""
    return _parse_record(MedicationReviewSubmission, data, known_provider_ids)


def _parse_record(model: type[Model], data: JsonInput, known: Collection[str] | None) -> Model:
    document, problems = load_document(data)
    context: dict[str, object] = {
        rules.KNOWN_PROVIDERS: None if known is None else frozenset(known)
    }
    return _validate(model, document, problems, context)


def _validate(
    model: type[Model], document: object, problems: list[FieldError], context: dict[str, object]
) -> Model:
    texts = control_character_issues(document)
    reported = problems + texts
    try:
        result = model.model_validate(document, context=context)
    except ValidationError as exc:
        seen = {p.path for p in reported}
        found = [e for e in field_errors(exc) if e.path not in seen]
        if problems:
            raise ContractViolation(reported + found) from MalformedJson()
        raise ContractViolation(reported + found) from exc
    if problems:
        raise ContractViolation(reported) from MalformedJson()
    if texts:
        raise ContractViolation(texts)
    return result


def _with_raw_references(errors: list[FieldError], document: object) -> list[FieldError]:
    """When the encounter is malformed elsewhere its model rules did not run: check the
    provider references on the raw document so that they are reported all the same."""
    if not isinstance(document, Mapping):
        return errors
    staff = document.get("providers") or []
    if not isinstance(staff, list):
        return errors
    known = [p.get("provider_id") if isinstance(p, Mapping) else None for p in staff]
    known_ids = {k for k in known if isinstance(k, str)}
    if len(known_ids) < len(known):
        return errors  # a provider without a readable id: any reference might be to it
    issues = rules.provider_reference_issues(
        rules.references_of(document), known_ids, "this encounter's providers"
    )
    flagged = {e.path for e in errors}
    extra = [FieldError(path, msg) for path, msg in issues if path not in flagged]
    return errors + extra


# ---------------------------------------------------------------- JSON


class _JsonObject(dict[str, object]):
    """A decoded JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


class _NonFinite(float):
    """A `NaN`/`Infinity` literal, kept so that its path can be reported."""

    literal: str


def _non_finite(literal: str) -> _NonFinite:
    value = _NonFinite(literal)
    value.literal = literal
    return value


def load_document(data: JsonInput) -> tuple[object, list[FieldError]]:
    """Decode JSON; return the document and the problems JSON itself let through."""
    if isinstance(data, Mapping):
        return dict(data), []
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _at_root(f"not valid UTF-8 (byte {exc.start})") from exc
    if not isinstance(data, str):
        raise _at_root(f"the document must be a JSON object, got {_json_kind(data)}")
    try:
        document = json.loads(data, object_pairs_hook=_object, parse_constant=_non_finite)
    except json.JSONDecodeError as exc:
        raise _at_root(f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from exc
    except RecursionError as exc:
        raise _at_root("not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # an integer of over 4,300 digits (CVE-2020-10735)
        raise _at_root("not valid JSON: a number has too many digits") from MalformedJson(exc)
    if not isinstance(document, dict):
        raise _at_root(f"the document must be a JSON object, got {_json_kind(document)}")
    problems: list[FieldError] = []
    _inspect(document, [], problems)
    return document, problems


def _at_root(message: str) -> ContractViolation:
    return ContractViolation([FieldError("$", message)])


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _object(pairs: list[tuple[str, object]]) -> _JsonObject:
    obj = _JsonObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _inspect(value: object, path: Path, problems: list[FieldError]) -> None:
    """Walk the document for duplicate keys, NaN/Infinity and unpaired surrogates."""
    if isinstance(value, _JsonObject):
        for key in dict.fromkeys(value.duplicates):
            problems.append(FieldError(json_path([*path, key]), "key appears more than once"))
        for key, item in value.items():
            if not _is_unicode(key):
                problems.append(FieldError(json_path([*path, key]), _SURROGATE))
            _inspect(item, [*path, key], problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _inspect(item, [*path, index], problems)
    elif isinstance(value, _NonFinite):
        message = f"{value.literal} is not a JSON number; send a finite number"
        problems.append(FieldError(json_path(path), message))
    elif isinstance(value, str) and not _is_unicode(value):
        problems.append(FieldError(json_path(path), _SURROGATE))


_SURROGATE = "contains an unpaired surrogate escape (\\ud800-\\udfff), not valid Unicode"

# C0 control characters FHIR strings may not hold (R4 `string`: none below U+0020 but
# tab, line feed and carriage return); NUL is never allowed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control_character_issues(document: object) -> list[FieldError]:
    """A problem for every string (value or object key) in `document` holding a control
    character FHIR does not allow, at the path of the value (of the key's object)."""
    found: list[FieldError] = []
    _controls(document, [], found)
    return found


def _controls(value: object, path: Path, found: list[FieldError]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _CONTROL.search(key):
                found.append(FieldError(json_path(path), _control_message("a key", key)))
            _controls(item, [*path, key], found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _controls(item, [*path, index], found)
    elif isinstance(value, str) and _CONTROL.search(value):
        found.append(FieldError(json_path(path), _control_message("the text", value)))


def _control_message(what: str, text: str) -> str:
    # The code point and its position, never the text: it may be clinical content.
    match = _CONTROL.search(text)
    assert match is not None
    return (
        f"{what} holds the control character U+{ord(match.group()):04X} (at position "
        f"{match.start()}); FHIR strings allow no control character but tab, line feed "
        "and carriage return"
    )


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
