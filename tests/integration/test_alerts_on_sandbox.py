"""Alerts reach a person: a dead letter made against the real sandbox posts one message to
a real (local) webhook receiver."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.store.schema import outbox
from tests.integration.operator_support import patient_held_twice, wait_for, webhook_receiver
from tests.unit.adapter.api.conftest import example, serve

pytestmark = pytest.mark.integration

WRITER = f"alerts-writer-{uuid.uuid4().hex}"


@pytest.fixture
def namespace() -> str:
    return f"https://fhir.alerts-{uuid.uuid4().hex[:10]}.example"


@pytest.fixture
def tenant() -> str:
    return f"alerts-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with webhook_receiver() as found:
        yield found


@pytest.fixture
def service(
    postgres_url: str,
    fhir_base_url: str,
    tmp_path: Path,
    namespace: str,
    tenant: str,
    receiver: tuple[str, list[dict[str, Any]]],
) -> Iterator[str]:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps([{"key": WRITER, "tenant": tenant, "scopes": ["clinic/*.*"]}]))
    settings = Settings(
        database_url=postgres_url,
        ehr_base_url=fhir_base_url,
        api_keys_file=str(keys_file),
        namespace=namespace,
        pull_interval_seconds=0,
        alert_webhook_url=receiver[0],
        alert_check_seconds=0.5,
        alert_interval_seconds=3600,
        alert_oldest_waiting_seconds=3600,
        console_url="https://adapter.example.org/console",
    )
    for port in serve(create_app(settings)):
        yield f"http://127.0.0.1:{port}"


def test_dead_letter__sandbox_refuses_patient__one_message_to_webhook(
    service: str,
    fhir_base_url: str,
    postgres_url: str,
    namespace: str,
    tenant: str,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    document = example("typical-ketamine-infusion")
    patient_held_twice(fhir_base_url, namespace, tenant, document["patient"]["mrn"])
    posted = requests.post(
        f"{service}/clinic/encounters",
        json=document,
        headers={"Authorization": f"Bearer {WRITER}"},
        timeout=60,
    )
    assert posted.status_code == 201, posted.text
    _, received = receiver
    [message] = wait_for("the dead letter's message", lambda: received)
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            dead = conn.execute(
                select(outbox.c.id).where(outbox.c.tenant == tenant, outbox.c.state == "dead")
            ).scalars()
            dead_ids = list(dead)
    finally:
        engine.dispose()
    assert message["kind"] == "dead_letter"
    assert message["count"] == len(dead_ids) == 1
    assert message["ids"] == dead_ids
    assert message["console"] == "https://adapter.example.org/console/dead-letters"
    assert document["patient"]["mrn"] not in json.dumps(message)
