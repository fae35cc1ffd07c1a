"""Several `adapter serve` instances that share nothing but PostgreSQL (and the secrets).

Each instance is a process of its own on its own port, with its own push worker, as a
hosted deployment runs them behind a load balancer. Whatever one instance hands a client
(a paging link, an idempotent answer) the other must honour, and an instance killed with
SIGKILL mid-push must leave nothing lost and nothing sent twice. Every test runs twice:
straight to PostgreSQL, and through PgBouncer in transaction-pooling mode (`?pgbouncer=true`),
where no session state survives between transactions.

Each test uses a tenant and an identifier namespace of its own, so the shared test database
and the long-lived sandbox hold nothing else it could count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import Engine, func, select

from adapter.ingest import ingest_encounter
from adapter.store import outbox as box
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import outbox
from mappings.context import MappingContext
from tests.integration.pgbouncer import pgbouncer
from tests.integration.support import encounters
from tests.integration.test_clinic_api import _free_port, serving
from tests.integration.test_push_on_sandbox import _assert_each_once, _expected

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 600.0


@dataclass(frozen=True)
class Deployment:
    """What the instances of one test share: the database, the EHR, the keys and secrets."""

    database_url: str
    ehr: str
    ctx: MappingContext
    key: str
    folder: Path

    def settings(self, **extra: str) -> dict[str, str]:
        keys = self.folder / "keys.json"
        if not keys.exists():
            entry = {"key": self.key, "tenant": self.ctx.tenant, "scopes": ["clinic/*.*"]}
            keys.write_text(json.dumps([entry]))
        return {
            "ADAPTER_DATABASE_URL": self.database_url,
            "ADAPTER_EHR_BASE_URL": self.ehr,
            # The tenant's namespace is `{ADAPTER_NAMESPACE}/{tenant}` (per-tenant, the default).
            "ADAPTER_NAMESPACE": self.ctx.namespace.removesuffix(f"/{self.ctx.tenant}"),
            "ADAPTER_API_KEYS_FILE": str(keys),
            # Shared by every instance, as the deployment guide says: a link sealed by one
            # must open on the others.
            "ADAPTER_PAGING_SECRET": "multi-instance-test-secret-0123456789abcdef",
            "ADAPTER_LOG_LEVEL": "WARNING",
            **extra,
        }

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(params=["direct", "pgbouncer"])
def database_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "direct":
        yield postgres_url
        return
    with pgbouncer(postgres_url) as pooled:
        yield f"{pooled}?pgbouncer=true"


@pytest.fixture
def deployment(database_url: str, fhir_base_url: str, tmp_path: Path) -> Deployment:
    run = uuid.uuid4().hex[:10]
    base = f"https://fhir.mi-{run}.example"
    # Each tenant's identifiers live in its own namespace under the base (the default).
    ctx = MappingContext(namespace=f"{base}/mi-{run}", tenant=f"mi-{run}")
    migrated = create_store_engine(database_url)
    upgrade(migrated)  # before the instances start, so neither waits for the other's
    migrated.dispose()
    return Deployment(database_url, fhir_base_url, ctx, f"mi-key-{uuid.uuid4().hex}", tmp_path)


@contextmanager
def _instances(deployment: Deployment, count: int, **extra: str) -> Iterator[list[str]]:
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                serving(deployment.settings(**extra), deployment.folder / f"instance-{n}.log")
            )
            for n in range(count)
        ]
        yield urls


def _on_other(link: str, other: str) -> str:
    """`link` as the other instance's URL: same path and query, its host and port."""
    parts, there = urlsplit(link), urlsplit(other)
    return urlunsplit((there.scheme, there.netloc, parts.path, parts.query, parts.fragment))


def _pages(first: str, auth: dict[str, str], hop: list[str] | None = None) -> list[list[str]]:
    """The ids on every page from `first`, following `next` links (each through the next
    instance of `hop` in turn, when given)."""
    pages: list[list[str]] = []
    url: str | None = first
    while url is not None:
        if hop:
            url = _on_other(url, hop[len(pages) % len(hop)])
        reply = requests.get(url, headers=auth, timeout=60)
        assert reply.status_code == 200, reply.text
        bundle = reply.json()
        pages.append([entry["resource"]["id"] for entry in bundle.get("entry", [])])
        url = next((ln["url"] for ln in bundle.get("link", []) if ln["relation"] == "next"), None)
    return pages


def _post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    sent = {"Content-Type": "application/json", **headers}
    return requests.post(f"{url}/clinic/encounters", data=body, headers=sent, timeout=60)


def _until(condition: Any, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.25)


def test_two_instances__links_and_idempotent_answers_cross__each_resource_pushed_once(
    deployment: Deployment,
) -> None:
    subs = list(encounters(3, "esketamine-session"))
    with _instances(deployment, 2) as (first, second):
        receipts = []
        for n, sub in enumerate(subs):
            body = sub.model_dump_json(exclude_none=True).encode()
            key = {"Idempotency-Key": f"visit-{n}"}
            answer = _post(first, body, deployment.auth | key)
            assert answer.status_code == 201, answer.text
            again = _post(second, body, deployment.auth | key)
            assert again.status_code == 201, again.text
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == answer.json()
            receipts.append(answer.json())

        def pushed() -> bool:
            statuses = [
                requests.get(
                    f"{second}{r['status_url']}", headers=deployment.auth, timeout=60
                ).json()["status"]
                for r in receipts
            ]
            assert not {"failed", "conflict"} & set(statuses), statuses
            return statuses == ["pushed"] * len(receipts)

        _until(pushed, "every submission pushed")
        search = f"{first}/fhir/Observation?_count=7"
        alone = _pages(search, deployment.auth)
        crossing = _pages(search, deployment.auth, hop=[second, first])
        assert len(alone) > 2
        assert crossing == alone
    _assert_each_once(deployment.ehr, _expected(subs, deployment.ctx), deployment.ctx)
    _assert_no_error_logged(deployment)


def _unfinished(engine: Engine, tenant: str) -> int:
    with engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.tenant == tenant, outbox.c.state != box.DONE)
        )
        return int(conn.execute(query).scalar_one())


def _done(engine: Engine, tenant: str) -> int:
    with engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.tenant == tenant, outbox.c.state == box.DONE)
        )
        return int(conn.execute(query).scalar_one())


def _serve(deployment: Deployment, name: str, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`adapter serve` started without waiting: the process and its log's path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    env |= {"ADAPTER_PULL_INTERVAL_SECONDS": "0"} | deployment.settings(**extra)
    log = deployment.folder / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapter.cli", "serve", "--port", str(_free_port())],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
        )
    return process, str(log)


def test_instance_killed_mid_push__the_other_finishes__nothing_lost_or_sent_twice(
    deployment: Deployment,
) -> None:
    ctx = deployment.ctx
    engine = create_store_engine(deployment.database_url)
    subs = list(encounters(120, "esketamine-session"))
    for sub in subs:
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)
    total = _unfinished(engine, ctx.tenant)
    quick = {"ADAPTER_WORKER_LEASE_SECONDS": "5"}
    doomed, doomed_log = _serve(deployment, "doomed", **quick)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        _until(lambda: _done(engine, ctx.tenant) >= 10, "the first instance pushing")
        assert doomed.poll() is None, f"the instance exited by itself (log: {doomed_log})"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(60)
        assert _unfinished(engine, ctx.tenant) > 0, "killed too late to prove anything"
        survivor, survivor_log = _serve(deployment, "survivor", **quick)
        _until(lambda: _unfinished(engine, ctx.tenant) == 0, "the survivor draining the outbox")
        assert survivor.poll() is None, f"the survivor exited by itself (log: {survivor_log})"
    finally:
        for process in (doomed, survivor):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
    assert _done(engine, ctx.tenant) == total
    _assert_each_once(deployment.ehr, _expected(subs, ctx), ctx)
    _assert_no_error_logged(deployment)
    engine.dispose()


def _assert_no_error_logged(deployment: Deployment) -> None:
    """The outcome alone would hide a store that fails now and then: the push retries until
    it gets through. Through a transaction pooler that is what session state causes (a
    prepared statement missing on the session a transaction lands on), so no instance may
    have logged an error at all."""
    for log in sorted(deployment.folder.glob("*.log")):
        errors = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if " ERROR " in line or line.startswith("Traceback")
        ]
        assert errors == [], f"{log.name}: {errors[:3]}"
