"""A sentinel patient sent through every path of the clinic API never shows up in the logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from adapter.api.app import create_app
from adapter.api.clinic import encounters
from tests.unit.adapter.api.conftest import (
    READER_A,
    SENTINELS,
    WRITER_A,
    bearer,
    post_encounter,
    running,
    sentinel_document,
    settings_for,
)

KEY = {"Idempotency-Key": "sentinel-key-1"}


def _raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def _invalid(document: dict[str, Any]) -> dict[str, Any]:
    broken: dict[str, Any] = json.loads(json.dumps(document))
    broken["vitals"][1]["diastolic"]["value"] = 987.654
    broken["Zebulon-Sentinel"] = "Quixotewhistle"
    broken["patient"]["sex"] = "MRN-SENTINEL-7731"
    return broken


def _accepted_paths(client: TestClient) -> list[int]:
    document = sentinel_document()
    changed = json.loads(json.dumps(document))
    changed["vitals"][0]["heart_rate"]["value"] = 77
    statuses = [
        post_encounter(client, document, headers=KEY).status_code,
        post_encounter(client, document, headers=KEY).status_code,
        post_encounter(client, document).status_code,
        post_encounter(client, changed).status_code,
    ]
    receipt = post_encounter(client, changed).json()
    url = receipt["status_url"]
    statuses.append(client.get(url, headers=bearer(READER_A)).status_code)
    return statuses


def _refused_paths(client: TestClient) -> list[int]:
    document = sentinel_document()
    raw = _raw(document)
    return [
        post_encounter(client, _invalid(document)).status_code,
        post_encounter(client, changed_body(raw), headers=KEY).status_code,
        post_encounter(client, raw[:-40]).status_code,
        post_encounter(client, raw.replace(b"Quixotewhistle", b"Quixotewhistle\xff")).status_code,
        post_encounter(client, raw.replace(b"}", b', "mrn": "MRN-SENTINEL-7731"}', 1)).status_code,
        client.post("/clinic/encounters", content=raw, headers=bearer(WRITER_A)).status_code,
        client.post("/clinic/encounters", content=raw).status_code,
        post_encounter(client, raw, key="not-a-key-MRN-SENTINEL-7731").status_code,
        post_encounter(client, raw, key=READER_A).status_code,
    ]


def changed_body(raw: bytes) -> bytes:
    return raw.replace(b"Zebulon-Sentinel", b"Zebulon-Sentinel2")


def _failing_paths(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    raw = _raw(sentinel_document())

    def database_down(*_: object, **__: object) -> None:
        raise OperationalError("INSERT ... 'MRN-SENTINEL-7731'", {}, Exception("Quixotewhistle"))

    def bug(*_: object, **__: object) -> None:
        raise ValueError("Zebulon-Sentinel 1911-11-11")

    statuses = []
    for failure in (database_down, bug):
        monkeypatch.setattr(encounters, "ingest_encounter", failure)
        statuses.append(post_encounter(client, raw).status_code)
    return statuses


def test_sentinel__through_every_path__never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for client in running(create_app(settings_for(tmp_path, max_body_bytes=8000))):
        accepted = _accepted_paths(client)
        refused = _refused_paths(client)
        failed = _failing_paths(client, monkeypatch)
        too_large = post_encounter(client, _raw(sentinel_document()) + b" " * 8000).status_code
    assert accepted == [201, 201, 200, 200, 200]
    assert refused == [422, 422, 400, 400, 422, 415, 401, 401, 403]
    assert failed == [503, 500]
    assert too_large == 413
    assert "submission" in caplog.text  # the paths did log, just nothing clinical
    for sentinel in SENTINELS:
        assert sentinel not in caplog.text
