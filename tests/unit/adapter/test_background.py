"""The service's background work: the lead migrates; a web process only waits for it."""

from __future__ import annotations

from pathlib import Path

from adapter.background import BackgroundWork
from adapter.config import Settings
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
