"""Pydantic's validation errors, in the words and JSON paths of a clinic developer.

A rule of the contract raises `contract_error(...)`: one pydantic error that carries any
number of issues, each a (sub-path, message) pair relative to where it was raised. This
module turns a whole `ValidationError` into the `FieldError`s of a `ContractViolation`,
with paths such as `vitals[1].diastolic` and messages such as "must be one of: mmHg".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from mappings.errors import FieldError

RULE = "contract_rule"
Issue = tuple[str, str]
"""(sub-path relative to the failing object, "" for the object itself; message)."""

DATE_TIME_EXAMPLE = "2026-11-20T09:05:00-05:00 or ...Z"
OFFSET_MESSAGE = f"date-time must carry a UTC offset, e.g. {DATE_TIME_EXAMPLE}"

# NDC as printed on the package: the 10-digit labeler-product-package forms (4-4-2, 5-3-2,
# 5-4-1) or the 11-digit 5-4-2 form.
NDC_PATTERN = (
    r"^([0-9]{4}-[0-9]{4}-[0-9]{2}|[0-9]{5}-[0-9]{3}-[0-9]{2}|[0-9]{5}-[0-9]{4}-[0-9]{1,2})$"
)
LOT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ./_-]{0,39}$"
_PATTERN_MESSAGES = {
    NDC_PATTERN: "must be an NDC with its hyphens as printed, e.g. 50458-028-02 (4-4-2, "
    "5-3-2, 5-4-1 or 5-4-2 digits)",
    LOT_PATTERN: "must be a lot number of 1-40 characters from A-Z a-z 0-9 space . / _ -",
    r"^[A-Za-z0-9._-]{1,64}$": "must be an id of 1-64 characters from A-Z a-z 0-9 . _ -",
    r"^[0-9]{10}$": "NPI must be exactly 10 digits",
    r"^[A-Z]{2}$": "must be an ISO 3166 alpha-2 country code in capitals, e.g. US",
    r"^[0-9]{1,10}$": "RxNorm code must be 1-10 digits, e.g. 36437",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an email address such as name@example.org",
}
_ICD10_MESSAGE = "must be an ICD-10 code such as F33.2 (letter, 2 characters, optional .suffix)"

_TYPE_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not in contract v1)",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list (JSON array)",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "timezone_aware": OFFSET_MESSAGE,
    "datetime_type": f"must be a date-time like {DATE_TIME_EXAMPLE}",
    "datetime_parsing": f"must be a real date-time like {DATE_TIME_EXAMPLE}",
    "datetime_from_date_parsing": f"must be a real date-time like {DATE_TIME_EXAMPLE}",
    "date_type": "must be a date YYYY-MM-DD",
    "date_parsing": "must be a real date YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a real date YYYY-MM-DD",
    "frozen_instance": "cannot be changed",
}


def contract_error(*issues: Issue) -> PydanticCustomError:
    """One pydantic error carrying every issue a rule found."""
    summary = "; ".join(f"{path}: {msg}" if path else msg for path, msg in issues)
    return PydanticCustomError(RULE, "{summary}", {"summary": summary, "issues": list(issues)})


def json_path(loc: Sequence[int | str]) -> str:
    """`("vitals", 1, "diastolic")` -> `vitals[1].diastolic`; the root is `$`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        elif re.fullmatch(r"[a-z-]+\[.*\]", part):
            continue  # pydantic's validator-function noise, e.g. function-after[...]
        else:
            out += f"[{_quote(part)}]"
    return out or "$"


def _quote(key: str) -> str:
    # JSON's own escaping: a key holding a control character cannot break a report's line
    # (nor one holding an unpaired surrogate make it unprintable).
    quoted = json.dumps(key, ensure_ascii=False)
    try:
        quoted.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(key)
    return quoted


def join(path: str, sub: str) -> str:
    if not sub:
        return path
    if path == "$":
        return sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Every error of `exc`, translated; rule errors expand into their issues."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        out.extend(_translate(err))
    return out


def _translate(err: ErrorDetails) -> Iterable[FieldError]:
    path = json_path(err["loc"])
    ctx = err.get("ctx") or {}
    if err["type"] == RULE:
        return [FieldError(join(path, sub), msg) for sub, msg in ctx["issues"]]
    return [FieldError(path, _message(err, ctx))]


def _message(err: ErrorDetails, ctx: dict[str, object]) -> str:
    kind = err["type"]
    if err.get("input", ...) is None and kind.endswith("_type"):
        return "must not be null"
    if kind == "literal_error":
        return "must be one of: " + ", ".join(re.findall(r"'([^']*)'", str(ctx["expected"])))
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx["pattern"]), _ICD10_MESSAGE)
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(**ctx)
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    return _TYPE_MESSAGES.get(kind, err["msg"])


_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}
