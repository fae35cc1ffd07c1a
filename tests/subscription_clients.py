"""The client side of FHIR Subscriptions in tests: a Subscription body as a client posts it,
and a deliverer driven round by round until nothing is due."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI

from adapter.notify.deliverer import Deliverer, Policy
from adapter.notify.guard import allowed_hosts
from adapter.notify.sender import Sender
from adapter.store.subscription_topics import ENCOUNTER

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FHIR = "application/fhir+json"


def subscription(
    endpoint: str,
    topic: str = ENCOUNTER,
    content: str = "id-only",
    criteria: str | None = None,
    **channel: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT + "backport-subscription"]},
        "status": "requested",
        "reason": "tell the EHR",
        "criteria": topic,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": FHIR,
            "_payload": {
                "extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]
            },
            "header": ["Authorization: Bearer receiver-secret"],
        }
        | channel,
    }
    if criteria is not None:
        body["_criteria"] = {
            "extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": criteria}]
        }
    return body


def deliverer(app: FastAPI, **policy: Any) -> Deliverer:
    sender = Sender(allowed_hosts("127.0.0.1"))
    return Deliverer(app.state.engine, sender, owner="test", policy=_policy(policy))


def _policy(values: dict[str, Any]) -> Policy:
    return Policy(
        **({"timeout_seconds": 5, "base_seconds": 0.01, "max_wait_seconds": 0.05} | values)
    )


def drain(work: Deliverer, seconds: float = 30) -> None:
    """Deliver until nothing is due (backoffs here are centiseconds)."""
    deadline = time.monotonic() + seconds
    idle = 0
    while idle < 5:
        assert time.monotonic() < deadline, "delivery did not settle"
        idle = 0 if work.run_once() else idle + 1
        time.sleep(0.02)
