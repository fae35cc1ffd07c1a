"""Shared by the operator's tests (alerts, console): a webhook receiver, and a patient the
sandbox holds twice, so that it refuses our conditional update of it (a dead letter whose
cause an operator can fix on the EHR).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from mappings.common import identity
from mappings.context import MappingContext
from tests.integration.support import FHIR_JSON

Message = dict[str, Any]


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[Message]]]:
    """A real HTTP server on a free loopback port keeping every JSON body posted to it:
    its URL and the list of bodies."""
    received: list[Message] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def patient_held_twice(base: str, namespace: str, tenant: str, mrn: str) -> list[str]:
    """Make the sandbox hold two Patients with the identifier our patient will carry (the
    MRN under the tenant's namespace): ids of the two."""
    who = identity.patient(MappingContext(namespace=f"{namespace}/{tenant}", tenant=tenant), mrn)
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": who.system, "value": who.value}],
    }
    ids = []
    for _ in range(2):
        reply = requests.post(f"{base}/Patient", json=body, headers=FHIR_JSON, timeout=60)
        reply.raise_for_status()
        ids.append(str(reply.json()["id"]))
    return ids


def delete_on_sandbox(base: str, reference: str) -> None:
    reply = requests.delete(f"{base}/{reference}", headers=FHIR_JSON, timeout=60)
    assert reply.status_code in (200, 204), reply.text


def wait_for(what: str, found: Callable[[], Any], seconds: float = 120.0) -> Any:
    """Poll `found` until it returns something truthy (which is returned), or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")
