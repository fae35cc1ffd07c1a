"""The service's background work: the lead migrates; a web process only waits for it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from adapter.background import BackgroundWork
from adapter.config import Settings
from adapter.store import upkeep
from adapter.store.engine import create_store_engine
from adapter.store.migrate import current_revision, head_revision, upgrade


def test_background__lead__migrates_a_fresh_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    work = BackgroundWork(Settings(database_url=url, ehr_base_url=""), engine)
    work.start()
    try:
        assert work.migrated.wait(60)
        assert current_revision(engine) == head_revision()
    finally:
        work.stop()
        engine.dispose()


def test_background__web_process__waits_for_the_lead_and_never_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    follower = BackgroundWork(Settings(database_url=url, ehr_base_url=""), engine, lead=False)
    follower.start()
    try:
        assert not follower.migrated.wait(1.5)
        assert current_revision(engine) is None  # it did not migrate on its own
        upgrade(engine)  # what the lead process does
        assert follower.migrated.wait(60)
    finally:
        follower.stop()
        engine.dispose()


def test_background__stop__waits_for_every_thread_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert watch, the store upkeep and the deliverer have ended when `stop` returns:
    none is still using the engine when the service disposes of it (here the upkeep is
    mid-pass when asked to stop)."""
    in_pass = threading.Event()

    def slow_pass(*_: object) -> None:
        in_pass.set()
        time.sleep(0.5)

    monkeypatch.setattr(upkeep, "upkeep_once", slow_pass)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    settings = Settings(
        database_url=url,
        ehr_base_url="",
        run_worker=True,
        alert_webhook_url="https://alerts.example.org/hook",
    )
    work = BackgroundWork(settings, engine)
    work.start()
    names = {"adapter-alerts", "adapter-store-upkeep", "adapter-notify"}
    try:
        assert work.migrated.wait(60)
        assert in_pass.wait(60)
        deadline = time.monotonic() + 60
        while not names <= {t.name for t in threading.enumerate()}:
            assert time.monotonic() < deadline, "the helper threads did not start"
            time.sleep(0.01)
    finally:
        work.stop()
        engine.dispose()
    assert not names & {t.name for t in threading.enumerate() if t.is_alive()}
