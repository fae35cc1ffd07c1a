"""One migrated SQLite store per test run, copied for each test that needs an empty store.

Migrating a fresh store runs every Alembic revision (50-170 ms, more on a busy machine);
copying the file of one already migrated costs about a millisecond. The copy is the same
schema at the same revision, so the code under test still runs its own `upgrade` at start,
which finds nothing to do. Tests of migrations themselves make their stores from scratch.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade


@functools.cache
def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="adapter-store-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "store.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


def migrated_sqlite(path: Path) -> str:
    """Make `path` a migrated, empty store (a copy of the run's template): its URL.

    A file already at `path` is a store the test made on purpose and is left alone."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template(), path)
    return f"sqlite:///{path}"
