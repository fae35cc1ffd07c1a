"""Helpers for the contract tests: the shared examples as dicts, and error assertions."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from mappings.contract import parse_submission
from mappings.errors import ContractViolation, FieldError
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR

TODAY = date(2026, 11, 24)
Doc = dict[str, Any]


def example(name: str = "typical-ketamine-infusion") -> Doc:
    doc: Doc = json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(doc)


def example_bytes(name: str) -> bytes:
    return (EXAMPLES_DIR / f"{name}.json").read_bytes()


def errors_of(
    data: Any, parse: Callable[..., object] = parse_submission, **kw: Any
) -> list[FieldError]:
    with pytest.raises(ContractViolation) as caught:
        parse(data, **kw)
    errors = caught.value.errors
    assert errors, "a ContractViolation must list at least one error"
    return errors


def assert_only_error(data: Any, path: str, fragment: str, **kw: Any) -> FieldError:
    """Parsing fails with exactly one error, at `path`, whose message contains `fragment`."""
    errors = errors_of(data, **kw)
    assert [e.path for e in errors] == [path], errors
    assert fragment in errors[0].message, errors[0]
    return errors[0]


def assert_has_error(errors: list[FieldError], path: str, fragment: str) -> None:
    matching = [e for e in errors if e.path == path and fragment in e.message]
    assert matching, f"no error at {path} containing {fragment!r} in {errors}"


__all__ = [
    "EXAMPLE_NAMES",
    "TODAY",
    "assert_has_error",
    "assert_only_error",
    "errors_of",
    "example",
]
