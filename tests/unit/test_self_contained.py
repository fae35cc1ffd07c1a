"""`scripts/check_self_contained.py` (run by `make lint`): what it refuses, and that the
repository itself passes it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_self_contained", ROOT / "scripts" / "check_self_contained.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_self_contained = _load_check()


def _hits(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return [str(hit) for hit in check_self_contained.check(tmp_path, [name])]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tests/unit/x.py", "from pathlib import Path\nP = Path(__file__).parents[3] / 'a'\n"),
        (
            "tests/unit/x.py",
            "from pathlib import Path\nD = Path(__file__).resolve().parents[3] / 'shared' / 'e'\n",
        ),
        (
            "bench/x.py",
            ("from pathlib import Path\nROOT = Path(__file__).parents[1]\nX = ROOT.parent\n"),
        ),
        (
            "bench/x.py",
            ("from pathlib import Path\nROOT = Path(__file__).parent\nX = ROOT / '../..'\n"),
        ),
        ("a/x.py", "import os\nX = os.path.join(os.path.dirname(__file__), '..', '..')\n"),
        ("a/x.py", "from pathlib import Path\nX = Path('../sibling/file.json').read_text()\n"),
        ("a/x.py", "X = open('../notes.txt')\n"),
        ("scripts/run", 'cd "$(dirname "$0")/../.."\n'),
        ("scripts/run", 'cat "$(dirname "$0")/../../notes"\n'),
        ("sandbox/build", 'cd "$(dirname "$0")"\ncat ../../x\n'),
        ("Makefile", "test:\n\tcat ../x\n"),
        ("docker-compose.yml", "volumes: [./x:/data, /work/shared/contract/examples:/e]\n"),
    ],
)
def test_check__a_path_leaving_the_root__is_named_with_its_line(
    tmp_path: Path, name: str, text: str
) -> None:
    hits = _hits(tmp_path, name, text)
    assert hits
    assert all(hit.startswith(f"{name}:") and "outside the repository" in hit for hit in hits)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tests/unit/x.py", "from pathlib import Path\nP = Path(__file__).parents[2] / 'a'\n"),
        (
            "bench/x.py",
            ("from pathlib import Path\nROOT = Path(__file__).parents[1]\nX = ROOT / 'ex'\n"),
        ),
        ("a/x.py", "import os\nX = os.path.join(os.path.dirname(__file__), '..')\n"),
        ("a/x.py", "ID = '../metadata'  # a value under test, not a path\n"),
        ("scripts/run", 'cd "$(dirname "$0")/.."\ncat ./x\n'),
        ("sandbox/build", 'cd "$(dirname "$0")"\npid_file=../.run/sandbox.pid\n'),
        ("docs/history.md", "The contract was first written in ../shared/contract/.\n"),
    ],
)
def test_check__paths_inside_the_root__pass(tmp_path: Path, name: str, text: str) -> None:
    assert _hits(tmp_path, name, text) == []


def test_check__this_repository__reads_nothing_outside_itself() -> None:
    names = check_self_contained.tracked_files(ROOT)
    assert "scripts/check_self_contained.py" in names or not (ROOT / ".git").exists()
    assert check_self_contained.check(ROOT, names) == []
