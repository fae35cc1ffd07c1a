"""Fetching a CapabilityStatement: each failure becomes the most specific EhrError."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from adapter.errors import EhrBadResponse, EhrError, EhrTimeout, EhrUnavailable
from adapter.fhir.capability import fetch_capability_statement

BASE = "http://ehr.test/fhir"


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_fetch__capability_statement__returned(ehr: responses.RequestsMock) -> None:
    ehr.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    assert fetch_capability_statement(BASE, 1.0)["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"status": 503}, EhrUnavailable),
        ({"body": requests.ConnectionError("refused")}, EhrUnavailable),
        ({"body": requests.ConnectTimeout("slow")}, EhrTimeout),
        ({"status": 404}, EhrBadResponse),
        ({"body": "<html>"}, EhrBadResponse),
        ({"json": ["not", "an", "object"]}, EhrBadResponse),
    ],
)
def test_fetch__failure__most_specific_ehr_error(
    ehr: responses.RequestsMock, reply: dict[str, object], error: type[EhrError]
) -> None:
    ehr.add(responses.GET, f"{BASE}/metadata", **reply)  # type: ignore[arg-type]
    with pytest.raises(error):
        fetch_capability_statement(BASE, 1.0)
