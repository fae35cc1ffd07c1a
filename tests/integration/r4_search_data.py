"""The data tests/integration/test_fhir_r4_search_on_sandbox.py searches: several patients with
several encounters each, posted to `adapter serve` and pushed by it to the sandbox, so both
hold the same resources; and the two sides' ids of each of them.

Patient `n` is one of the three contract examples (in turn) with every clinic id made its
own (`support.encounter`); its visit `v` is moved `7 v + n` days later, so dates differ
between patients and between one patient's encounters.

The sandbox gives its own ids to what we push by identifier (conditional update), and keeps
ours for what we push by id (`mappings.bundle.WRITTEN_BY_ID`); each submission's status
names the sandbox's reference of every resource delivered, so a search result on either side
becomes one of our `Type/id` keys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import requests

from tests.integration.support import FHIR_JSON, encounter
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES

PATIENTS = 6
VISITS = 2
PUSH_TIMEOUT_SECONDS = 600
# Every resource of one type fits in one page of ours and of the sandbox.
PAGE = 1000
_DAY = re.compile(r"2026-11-(\d\d)")


def submissions() -> Iterator[bytes]:
    """The encounters to post, each as the clinic sends it."""
    for n in range(PATIENTS):
        for visit in range(VISITS):
            sub = encounter(n, EXAMPLE_NAMES[n % len(EXAMPLE_NAMES)], visit)
            text = sub.model_dump_json(exclude_none=True)
            yield _DAY.sub(_later_by(timedelta(days=7 * visit + n)), text).encode()


def _later_by(shift: timedelta) -> Callable[[re.Match[str]], str]:
    return lambda match: (date(2026, 11, int(match[1])) + shift).isoformat()


@dataclass(frozen=True)
class Pushed:
    """What both sides hold: our resources by type and id, as `/fhir` serves them, and the
    sandbox's reference of each (`Type/id` both ways)."""

    resources: dict[str, dict[str, dict[str, Any]]]
    ehr_of: dict[str, str]
    ours_of: dict[str, str]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return self.resources.get(resource_type, {})

    def keys(self, resource_type: str) -> frozenset[str]:
        return frozenset(f"{resource_type}/{i}" for i in self.of_type(resource_type))

    def where(self, resource_type: str, test: Callable[[dict[str, Any]], bool]) -> frozenset[str]:
        """Our keys of the type's resources that `test` holds for."""
        return frozenset(
            f"{resource_type}/{i}" for i, res in self.of_type(resource_type).items() if test(res)
        )


def post_and_push(url: str, auth: dict[str, str]) -> dict[str, str]:
    """Post every submission; once each is pushed, our `Type/id` -> the sandbox's."""
    receipts = [_post(url, body, auth) for body in submissions()]
    ehr_of: dict[str, str] = {}
    for receipt in receipts:
        status = _until_pushed(url, receipt["status_url"], auth)
        assert status["status"] == "pushed", status
        ehr_of |= {r["resource"]: r["ehr_reference"] for r in status["ehr_references"]}
    return ehr_of


def _post(url: str, body: bytes, auth: dict[str, str]) -> dict[str, Any]:
    """POST an encounter, waiting out the 503s of a store still being migrated."""
    deadline = time.monotonic() + 60
    headers = {"Content-Type": "application/json"} | auth
    while True:
        reply = requests.post(f"{url}/clinic/encounters", data=body, headers=headers, timeout=60)
        if reply.status_code != 503 or time.monotonic() > deadline:
            assert reply.status_code == 201, reply.text
            return dict(reply.json())
        time.sleep(float(reply.headers.get("Retry-After", "1")))


def _until_pushed(url: str, status_url: str, auth: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + PUSH_TIMEOUT_SECONDS
    while True:
        body = dict(requests.get(f"{url}{status_url}", headers=auth, timeout=60).json())
        if body["status"] != "stored" or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def served(url: str, auth: dict[str, str], types: list[str]) -> dict[str, dict[str, Any]]:
    """Every resource of `types` as `/fhir` serves it, by type and id."""
    found: dict[str, dict[str, Any]] = {}
    for resource_type in types:
        bundle = search(f"{url}/fhir/{resource_type}", [("_count", str(PAGE))], auth)
        found[resource_type] = {r["id"]: r for r in bundle}
    return found


def search(
    url: str,
    pairs: list[tuple[str, str]],
    headers: dict[str, str],
    *,
    post: bool = False,
    mode: str = "match",
) -> list[dict[str, Any]]:
    """The resources of a search's entries of `mode` (`match`, `include`), following `next`
    links to the end."""
    sent = FHIR_JSON | headers
    if post:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        reply = requests.post(f"{url}/_search", data=pairs, headers=sent | form, timeout=120)
    else:
        reply = requests.get(url, params=pairs, headers=sent, timeout=120)
    found: list[dict[str, Any]] = []
    while True:
        assert reply.status_code == 200, (reply.status_code, reply.text[:2000])
        page = reply.json()
        found += [
            e["resource"]
            for e in page.get("entry", [])
            if e.get("search", {}).get("mode", "match") == mode
        ]
        following = [ln["url"] for ln in page.get("link", []) if ln["relation"] == "next"]
        if not following:
            return found
        reply = requests.get(following[0], headers=sent, timeout=120)


def for_sandbox(
    pushed: Pushed, resource_type: str, pairs: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """`pairs` as the sandbox is asked them: our ids turned into its ids, and narrowed to the
    resources pushed here (`_id`: the sandbox also holds other tests' data)."""
    asked: list[tuple[str, str]] = []
    for name, value in pairs:
        modifier = name.split(".")[0].partition(":")[2]
        if name == "_id":
            value = ",".join(_ehr_id(pushed, f"{resource_type}/{v}") for v in value.split(","))
        elif "." not in name and modifier[:1].isupper() and not name.startswith("_has"):
            value = _ehr_id(pushed, f"{modifier}/{value}")
        else:
            value = pushed.ehr_of.get(value, value)
        asked.append((name, value))
    scope = ",".join(_ehr_id(pushed, key) for key in sorted(pushed.keys(resource_type)))
    return [*asked, ("_id", scope)]


def _ehr_id(pushed: Pushed, key: str) -> str:
    return pushed.ehr_of.get(key, key).split("/", 1)[1]
