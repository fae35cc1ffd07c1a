"""The public face of `mappings`: each package's `__all__` is exactly what it exports, and
the adapter imports only from that face (the rules are in `mappings/__init__.py`)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

import mappings

ROOT = Path(__file__).resolve().parents[3]

# Packages whose `__init__` declares what they offer: each `__all__` is pinned below.
FACES = (
    "mappings",
    "mappings.alerts",
    "mappings.care",
    "mappings.common",
    "mappings.contract",
    "mappings.encounter",
    "mappings.infusion",
    "mappings.intake",
    "mappings.medication_review",
    "mappings.protocol",
    "mappings.vitals",
)
# The adapter may import these packages' modules freely (any name, any module inside).
PUBLIC_PACKAGES = ("mappings.common", "mappings.contract", "mappings.terminology")
PUBLIC_MODULES = (
    "mappings.claims",
    "mappings.context",
    "mappings.errors",
    "mappings.jsontypes",
    "mappings.kinds",
)
# Reached through their `__all__` only: the modules inside are the package's own business.
RECORD_KIND_PACKAGES = (
    "mappings.care",
    "mappings.encounter",
    "mappings.infusion",
    "mappings.intake",
    "mappings.medication_review",
    "mappings.vitals",
    # Not record kinds, reached the same way: the protocol and the alerts' life.
    "mappings.alerts",
    "mappings.protocol",
)


def _exported(module: ModuleType) -> set[str]:
    """The public names the module's own code binds (imports, definitions, assignments):
    read from its source, since a package's submodules become its attributes on import."""
    assert module.__file__ is not None
    bound: set[str] = set()
    for node in ast.parse(Path(module.__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(target.id for target in targets if isinstance(target, ast.Name))
    return {name for name in bound if not name.startswith("_") and name != "annotations"}


def _all(name: str) -> list[str]:
    declared: list[str] = importlib.import_module(name).__all__
    return declared


@pytest.mark.parametrize("name", FACES)
def test_all__is_exactly_the_public_names_exported(name: str) -> None:
    module = importlib.import_module(name)
    declared = _all(name)
    assert len(declared) == len(set(declared)), f"{name}.__all__ names one twice"
    assert set(declared) == _exported(module)


@pytest.mark.parametrize("name", FACES)
def test_all__every_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    for member in _all(name):
        assert getattr(module, member) is not None, f"{name}.{member}"


def test_all__offers_parse_map_and_reverse() -> None:
    for member in ("parse_submission", "map_submission", "unmap_submission", "RECORD_KINDS"):
        assert member in mappings.__all__


def _is_public_module(module: str) -> bool:
    return module in PUBLIC_MODULES or any(
        module == package or module.startswith(package + ".") for package in PUBLIC_PACKAGES
    )


def _refusals(module: str, names: list[str]) -> list[str]:
    """What `from <module> import <names>` takes from outside the public face."""
    if _is_public_module(module):
        return []
    if module == "mappings" or module in RECORD_KIND_PACKAGES:
        offered = set(_all(module))
        return [
            f"{module}.{name}"
            for name in names
            if name not in offered and not _is_public_module(f"{module}.{name}")
        ]
    return [module]


def _adapter_imports() -> list[tuple[str, str, list[str]]]:
    """(file, module, names) of every import of `mappings` in `adapter/`."""
    found = []
    for path in sorted((ROOT / "adapter").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mappings"):
                found.append((where, node.module or "", [alias.name for alias in node.names]))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "mappings":
                        found.append((where, alias.name, []))
    return found


def test_adapter__imports_mappings_only_through_its_public_face() -> None:
    imports = _adapter_imports()
    assert len(imports) > 50, "the walk found the adapter's imports of mappings"
    refused = [
        f"{where}: {name}" for where, module, names in imports for name in _refusals(module, names)
    ]
    assert refused == []


@pytest.mark.parametrize(
    ("module", "names", "refused"),
    [
        ("mappings", ["map_submission", "terminology"], []),
        ("mappings", ["medication_review_refs"], ["mappings.medication_review_refs"]),
        ("mappings.common.lookup", ["obj"], []),
        ("mappings.vitals", ["map_vitals"], []),
        ("mappings.vitals", ["worst"], ["mappings.vitals.worst"]),
        ("mappings.vitals.readings", ["map_vitals"], ["mappings.vitals.readings"]),
        ("mappings.encounter.coverage", ["field_coverage"], ["mappings.encounter.coverage"]),
    ],
)
def test_refusals__tell_the_face_from_the_inside(
    module: str, names: list[str], refused: list[str]
) -> None:
    assert _refusals(module, names) == refused
