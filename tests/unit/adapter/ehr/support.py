"""Helpers for the FHIR client tests: the mocked EHR's URLs and statement, a clock, JSON paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import requests

from adapter.ehr.auth import EhrAuth
from adapter.ehr.client import FhirClient
from mappings.jsontypes import JsonObject, JsonValue

BASE = "https://ehr.test/fhir"
TOKEN_URL = "https://auth.ehr.test/token"


def capability(*system_interactions: str) -> JsonObject:
    """A CapabilityStatement declaring these system-level interactions."""
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": code} for code in system_interactions],
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "update"}],
                        "conditionalUpdate": True,
                    }
                ],
            }
        ],
    }


@dataclass
class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    now: float = 1_700_000_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_client(clock: FakeClock, auth: EhrAuth | None = None) -> FhirClient:
    return FhirClient(BASE, auth=auth, timeout_seconds=4.0, clock=clock, sleep=clock.sleep)


def at(value: JsonValue, *path: str | int) -> JsonValue:
    """The JSON value at `path` (keys and list indexes), failing the test if it is not there."""
    for step in path:
        if isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
            continue
        if isinstance(value, dict) and isinstance(step, str) and step in value:
            value = value[step]
            continue
        raise AssertionError(f"no {step!r} in {value!r}")
    return value


def sent_json(request: requests.PreparedRequest) -> JsonObject:
    """The JSON object a request carried."""
    body = request.body
    assert isinstance(body, bytes | str)
    found = json.loads(body)
    assert isinstance(found, dict)
    return found
