"""`GET /metrics`: the Prometheus text format, read back by Prometheus' own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.adapter.api.conftest import (
    KEYS,
    WRITER_A,
    bearer,
    example,
    running,
    settings_for,
    write_keys,
)

METRICS_KEY = "metrics-reader-of-clinic-a-0123456789abcdef"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from adapter.api.app import create_app

    keys = [*KEYS, {"key": METRICS_KEY, "tenant": "clinic-a", "scopes": ["admin/metrics.read"]}]
    (tmp_path / "keys").mkdir()
    keys_file = write_keys(tmp_path / "keys", keys)
    settings = settings_for(tmp_path, api_keys_file=str(keys_file))
    yield from running(create_app(settings))


def families(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = client.get("/metrics", headers=bearer(METRICS_KEY))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        family.name: [
            (sample.labels, sample.value)
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]
        for family in text_string_to_metric_families(answer.text)
    }


def test_metrics__parsed_by_prometheus__shows_outbox_requests_push_and_pull(
    client: TestClient,
) -> None:
    posted = {"method": "POST", "route": "/clinic/encounters", "status": "201"}
    before = dict(_requests(families(client))).get(tuple(sorted(posted.items())), 0.0)
    created = client.post(
        "/clinic/encounters", json=example("typical-ketamine-infusion"), headers=bearer(WRITER_A)
    )
    assert created.status_code == 201
    found = families(client)
    outbox = dict((labels["state"], value) for labels, value in found["adapter_outbox_entries"])
    assert outbox["pending"] == 1
    assert outbox["dead"] == 0
    [(_, age)] = found["adapter_outbox_oldest_waiting_age_seconds"]
    assert age >= 0
    # Counters live as long as the process: other tests' requests are counted too.
    assert dict(_requests(found))[tuple(sorted(posted.items()))] == before + 1
    for name in (
        "adapter_http_request_duration_seconds",
        "adapter_push_outcomes",
        "adapter_pull_outcomes",
        "adapter_ehr_request_duration_seconds",
        "adapter_audit_queue_depth",
        "adapter_dead_letters",
        "adapter_open_conflicts",
        "adapter_pull_lag_seconds",
    ):
        assert name in found


def test_metrics__labels__never_carry_an_id_from_the_path(client: TestClient) -> None:
    client.get("/clinic/submissions/4d1c0ffee", headers=bearer(WRITER_A))
    answer = client.get("/metrics", headers=bearer(METRICS_KEY))
    assert "4d1c0ffee" not in answer.text
    assert 'route="/clinic/submissions/{submission_id}"' in answer.text


def test_metrics__clinic_key__is_refused_403(client: TestClient) -> None:
    assert client.get("/metrics", headers=bearer(WRITER_A)).status_code == 403
    assert client.get("/metrics").status_code == 401


def _requests(found: dict[str, list[tuple[dict[str, str], float]]]) -> list[tuple[object, float]]:
    return [
        (tuple(sorted(labels.items())), value)
        for labels, value in found.get("adapter_http_requests", [])
    ]
