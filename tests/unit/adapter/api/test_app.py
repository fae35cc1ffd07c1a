"""The application factory: settings on app state, adapter errors as problem details."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from adapter.api.app import create_app, served
from adapter.config import Settings
from adapter.errors import EhrUnavailable


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", ehr_base_url="")


def test_create_app__given_settings__kept_on_app_state(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert create_app(settings).state.settings is settings


def test_create_app__adapter_error_in_route__problem_detail_with_its_status(
    tmp_path: Path,
) -> None:
    app = create_app(_settings(tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise EhrUnavailable("the EHR answered HTTP 503")

    reply = TestClient(app).get("/boom")
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["title"] == "EHR unavailable"
    assert reply.json()["detail"] == "the EHR answered HTTP 503"


def test_create_app__started__migrates_the_store_in_the_background(tmp_path: Path) -> None:
    from adapter.store.migrate import current_revision, head_revision

    app = create_app(_settings(tmp_path))
    with TestClient(app):
        assert app.state.background.migrated.wait(60)
    assert current_revision(app.state.engine) == head_revision()


def test_served__startup_objects_out_of_the_collectors_sight(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", ehr_base_url=""))
    try:
        assert served(app) is app
        assert gc.get_freeze_count() > 0
        assert all(tracked is not app for tracked in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
