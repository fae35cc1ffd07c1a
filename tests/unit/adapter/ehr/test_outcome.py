"""Reading a failure: status and OperationOutcome to EhrError, Retry-After, too-large Bundles."""

from __future__ import annotations

import pytest

from adapter.ehr.outcome import error_for_status, is_too_large
from adapter.ehr.pace import retry_after_seconds
from adapter.errors import (
    EhrAmbiguousMatch,
    EhrAuthFailed,
    EhrConflict,
    EhrContention,
    EhrError,
    EhrNotFound,
    EhrRateLimited,
    EhrRejected,
    EhrTimeout,
    EhrUnavailable,
)
from mappings.jsontypes import JsonObject

NOW = 1_700_000_000.0


def _outcome(text: str, code: str = "processing") -> JsonObject:
    issue: JsonObject = {"severity": "error", "code": code, "details": {"text": text}}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, EhrRejected, False),
        (401, EhrAuthFailed, False),
        (403, EhrAuthFailed, False),
        (404, EhrNotFound, False),
        (408, EhrTimeout, True),
        (409, EhrContention, True),
        (410, EhrNotFound, False),
        (422, EhrRejected, False),
        (429, EhrRateLimited, True),
        (500, EhrUnavailable, True),
        (502, EhrUnavailable, True),
        (503, EhrUnavailable, True),
        (504, EhrUnavailable, True),
    ],
)
def test_error_for_status__each_status__class_and_retryable(
    status: int, error: type[EhrError], retryable: bool
) -> None:
    found = error_for_status(status, "a read of Patient")
    assert type(found) is error
    assert found.retryable is retryable
    assert str(found) == f"the EHR answered HTTP {status} to a read of Patient"


@pytest.mark.parametrize(
    ("text", "if_match", "error"),
    [
        ("this search matched 2 resources", True, EhrAmbiguousMatch),
        ("more than one resource matches", False, EhrAmbiguousMatch),
        ("", False, EhrAmbiguousMatch),
        ("", True, EhrConflict),
        ("Resource version mismatch: expected 2", False, EhrConflict),
    ],
)
def test_error_for_status__412__conflict_or_ambiguous_match(
    text: str, if_match: bool, error: type[EhrError]
) -> None:
    outcome = _outcome(text) if text else None
    found = error_for_status(412, "a transaction", outcome=outcome, if_match=if_match)
    assert type(found) is error
    assert found.outcome == outcome


@pytest.mark.parametrize(
    ("text", "if_match", "error"),
    [
        (
            "HAPI-0989: Trying to update Patient/1/_history/1 but this is not the current version",
            True,
            EhrConflict,
        ),
        (
            "HAPI-0989: Trying to update Patient/1/_history/1 but this is not the current version",
            False,
            EhrContention,
        ),
        (
            "HAPI-0550: failed with a version constraint failure (two clients at once)",
            True,
            EhrContention,
        ),
    ],
)
def test_error_for_status__409__if_match_failure_is_a_conflict_else_contention(
    text: str, if_match: bool, error: type[EhrError]
) -> None:
    found = error_for_status(409, "a transaction", outcome=_outcome(text), if_match=if_match)
    assert type(found) is error
    assert found.retryable is (error is EhrContention)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 0 ", 0.0),
        ("Tue, 14 Nov 2023 22:15:00 GMT", 100.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds__delay_or_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "outcome", "too_large"),
    [
        (413, None, True),
        (400, _outcome("Bundle contains too many entries"), True),
        (400, _outcome("request exceeds the maximum allowed size"), True),
        (400, _outcome("stopped", code="too-costly"), True),
        (400, _outcome("Observation.status is required"), False),
        (400, None, False),
        (500, _outcome("too many entries"), False),
    ],
)
def test_is_too_large__only_when_the_server_says_so(
    status: int, outcome: JsonObject | None, too_large: bool
) -> None:
    assert is_too_large(status, outcome) is too_large
