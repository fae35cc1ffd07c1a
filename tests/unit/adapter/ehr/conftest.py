"""A mocked EHR for the FHIR client tests: `responses` in place of the network, and a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.unit.adapter.ehr.support import FakeClock


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
