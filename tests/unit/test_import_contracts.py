"""The contract "the store owns its SQL" (pyproject.toml) names every module and package of
`adapter` but `adapter.store`: a module added beside them and left out would be free to
import SQLAlchemy or the schema without `make lint` noticing.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import adapter

ROOT = Path(__file__).resolve().parents[2]
STORE_OWNS_SQL = "the store owns its SQL"


def test_store_owns_sql__contract__names_every_adapter_module_but_the_store() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"].startswith(STORE_OWNS_SQL)]
    children = {f"adapter.{m.name}" for m in pkgutil.iter_modules(adapter.__path__)}

    assert set(contract["source_modules"]) == children - {"adapter.store"}
    assert set(contract["forbidden_modules"]) == {"sqlalchemy", "adapter.store.schema"}
