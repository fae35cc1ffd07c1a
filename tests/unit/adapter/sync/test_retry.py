"""`retried`: a call to the EHR tried again while it fails retryably, at the EHR's pace."""

from __future__ import annotations

import pytest

from adapter.errors import EhrError, EhrRateLimited, EhrRejected, EhrUnavailable
from adapter.sync.ehr_retry import retried
from adapter.sync.push.worker import Backoff

QUICK = Backoff(base_seconds=0.5, cap_seconds=1.0)


class Flaky:
    """Raises the queued errors one per call, then answers."""

    def __init__(self, *errors: EhrError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def test_retried__rate_limited_with_retry_after__sleeps_exactly_that_then_answers() -> None:
    slept: list[float] = []
    call = Flaky(EhrRateLimited("slow down", retry_after=7.0))
    assert retried(call, attempts=3, backoff=QUICK, sleep=slept.append) == "answer"
    assert slept == [7.0]


def test_retried__retryable_every_time__gives_up_after_the_attempts() -> None:
    slept: list[float] = []
    call = Flaky(*(EhrUnavailable("down") for _ in range(5)))
    with pytest.raises(EhrUnavailable):
        retried(call, attempts=3, backoff=QUICK, sleep=slept.append)
    assert call.calls == 3
    assert len(slept) == 2


def test_retried__not_retryable__raised_at_once() -> None:
    call = Flaky(EhrRejected("no"))
    with pytest.raises(EhrRejected):
        retried(call, attempts=3, backoff=QUICK, sleep=lambda _: None)
    assert call.calls == 1
