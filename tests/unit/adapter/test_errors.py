"""The error tree: each error's HTTP status and its problem-detail form."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import adapter.errors
from adapter.errors import (
    AdapterError,
    ConfigError,
    EhrAmbiguousMatch,
    EhrAuthFailed,
    EhrBadResponse,
    EhrConflict,
    EhrContention,
    EhrError,
    EhrNotFound,
    EhrRateLimited,
    EhrRejected,
    EhrTimeout,
    EhrUnavailable,
    Signal,
)
from mappings.jsontypes import JsonObject


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AdapterError, 500),
        (ConfigError, 500),
        (EhrError, 502),
        (EhrUnavailable, 503),
        (EhrTimeout, 504),
        (EhrBadResponse, 502),
        (EhrRateLimited, 503),
        (EhrContention, 503),
        (EhrConflict, 409),
        (EhrAmbiguousMatch, 502),
        (EhrRejected, 502),
        (EhrNotFound, 404),
        (EhrAuthFailed, 502),
    ],
)
def test_error__each_class__knows_its_http_status(error: type[AdapterError], status: int) -> None:
    assert error.status_code == status
    assert issubclass(error, AdapterError)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (EhrUnavailable, True),
        (EhrTimeout, True),
        (EhrRateLimited, True),
        (EhrContention, True),
        (EhrBadResponse, False),
        (EhrConflict, False),
        (EhrAmbiguousMatch, False),
        (EhrRejected, False),
        (EhrNotFound, False),
        (EhrAuthFailed, False),
        (ConfigError, False),
    ],
)
def test_error__each_class__says_whether_a_retry_may_succeed(
    error: type[AdapterError], retryable: bool
) -> None:
    assert error.retryable is retryable


def test_error_tree__docstring__names_every_class() -> None:
    tree = adapter.errors.__doc__ or ""
    classes = [
        name
        for name, value in vars(adapter.errors).items()
        if isinstance(value, type) and issubclass(value, (AdapterError, Signal))
    ]
    assert all(f" {name} " in tree for name in classes)


def test_error_tree__no_exception_class_defined_outside_it() -> None:
    """Every exception the adapter raises is a branch of the one tree in `adapter.errors`."""
    root = Path(adapter.errors.__file__).parent
    strays = [
        f"{path.relative_to(root)}:{node.name}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(_is_exception(base) for base in node.bases)
    ]
    assert strays == []


def _is_exception(base: ast.expr) -> bool:
    name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
    return name.endswith(("Error", "Exception", "Refused", "Signal")) or name in _TREE


_TREE = {
    name
    for name, value in vars(adapter.errors).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def test_ehr_error__outcome__carried_but_not_in_the_message() -> None:
    outcome: JsonObject = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "MRN-1"}]}
    error = EhrRejected("the EHR answered HTTP 400 to a transaction", outcome=outcome)
    assert error.outcome == outcome
    assert "MRN-1" not in str(error)
    assert "MRN-1" not in str(error.problem_detail())


def test_rate_limited__retry_after__kept_in_seconds() -> None:
    assert EhrRateLimited("slow down", retry_after=12.5).retry_after == 12.5
    assert EhrRateLimited("slow down").retry_after is None


def test_problem_detail__ehr_timeout__rfc9457_fields() -> None:
    problem = EhrTimeout("no answer within 3 s").problem_detail()
    assert problem == {
        "type": "urn:ketamine-fhir-adapter:problem:ehr-timeout",
        "title": "EHR timeout",
        "status": 504,
        "detail": "no answer within 3 s",
    }
