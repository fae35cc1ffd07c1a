"""The error tree: each error's HTTP status and its problem-detail form."""

from __future__ import annotations

import pytest

from adapter.errors import (
    AdapterError,
    ConfigError,
    EhrBadResponse,
    EhrError,
    EhrTimeout,
    EhrUnavailable,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AdapterError, 500),
        (ConfigError, 500),
        (EhrError, 502),
        (EhrUnavailable, 503),
        (EhrTimeout, 504),
        (EhrBadResponse, 502),
    ],
)
def test_error__each_class__knows_its_http_status(error: type[AdapterError], status: int) -> None:
    assert error.status_code == status
    assert issubclass(error, AdapterError)


def test_problem_detail__ehr_timeout__rfc9457_fields() -> None:
    problem = EhrTimeout("no answer within 3 s").problem_detail()
    assert problem == {
        "type": "urn:ketamine-fhir-adapter:problem:ehr-timeout",
        "title": "EHR timeout",
        "status": 504,
        "detail": "no answer within 3 s",
    }
