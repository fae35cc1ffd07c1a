"""Refuse any tracked file that reads outside the repository (part of `make lint`).

A user who clones the project has nothing beside it: no `../shared`, no sibling checkout. So
no tracked file may name a path that leaves the repository. What is checked:

- Python: paths built from `__file__` (`Path(__file__).parents[k]`, `.parent` chains, names
  bound to them such as `ROOT`, `/ ".."` and `os.path.dirname`/`os.path.join` with `".."`),
  followed far enough to see whether they ever climb above the repository's root; and
  `Path("../...")`, `open("../...")`, `os.path.*("../...")`, which resolve against the working
  directory (the root, where every command of ours runs).
- Every other text file but Markdown (shell scripts, Makefile, Dockerfile, YAML, TOML, Java):
  chains of `..` segments, resolved against the script's own folder when they follow
  `$(dirname "$0")` or after a `cd "$(dirname "$0")"`, else against the root.
- Everywhere but Markdown: the folders that sit beside the repository on a developer's
  machine (`shared/contract`, `shared/clinical`, `shared/design`, `shared/hooks`).

Markdown is documentation: it may say where something was first written.

usage: python scripts/check_self_contained.py [ROOT]    exit 0 clean, 1 with one line per hit
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SIBLING_FOLDERS = re.compile(r"\bshared/(contract|clinical|design|hooks)\b")
DOTDOT_CHAIN = re.compile(r"(?<![\w.])\.\.(?:/\.\.)*(?=/|\b|$)")
SCRIPT_DIR_PREFIX = re.compile(r"""(dirname\s+"?\$(0|\{BASH_SOURCE\[0\]\})"?\)"?/)$""")
CD_SCRIPT_DIR = re.compile(
    r"""^\s*cd\s+"?\$\(dirname\s+"?\$(?:0|\{BASH_SOURCE\[0\]\})"?\)((?:/\.\.)*)"?\s*(?:&&|;|$)"""
)
# This check and its test spell the sibling folders' names out, to look for them.
NAMES_THE_SIBLINGS = frozenset(
    {"scripts/check_self_contained.py", "tests/unit/test_self_contained.py"}
)
SKIPPED_SUFFIXES = (".md", ".png", ".jpg", ".ico", ".jar", ".gz")


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: reads outside the repository: {self.why}"


def tracked_files(root: Path) -> list[str]:
    """The files git tracks under `root` (every file, when it is not a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
        )
    return [name for name in out.decode().split("\0") if name]


def check(root: Path, names: list[str]) -> list[Hit]:
    hits: list[Hit] = []
    for name in names:
        if name.endswith(SKIPPED_SUFFIXES):
            continue
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        if name not in NAMES_THE_SIBLINGS:
            hits.extend(_sibling_folders(name, text))
        if name.endswith(".py"):
            hits.extend(_python_paths(name, text))
        else:
            hits.extend(_dotdot_chains(name, text))
    return hits


def _sibling_folders(name: str, text: str) -> Iterator[Hit]:
    for number, line in enumerate(text.splitlines(), 1):
        found = SIBLING_FOLDERS.search(line)
        if found:
            yield Hit(name, number, f"names the folder beside the repository ({found.group(0)})")


def _depth(name: str) -> int:
    """How many folders lie between the repository's root and the file `name`."""
    return len(PurePosixPath(name).parts) - 1


def _dotdot_chains(name: str, text: str) -> Iterator[Hit]:
    cwd_depth = 0  # our scripts run from the root unless they `cd` to their own folder
    for number, line in enumerate(text.splitlines(), 1):
        moved = CD_SCRIPT_DIR.search(line)
        if moved:
            cwd_depth = _depth(name) - moved.group(1).count("..")
            if cwd_depth < 0:
                yield Hit(name, number, "`cd` to a folder above the root")
            continue
        for found in DOTDOT_CHAIN.finditer(line):
            ups = found.group(0).count("..")
            from_script_dir = SCRIPT_DIR_PREFIX.search(line[: found.start()])
            if ups > (_depth(name) if from_script_dir else cwd_depth):
                yield Hit(name, number, f"'{found.group(0)}' climbs above the root")


# ---------------------------------------------------------------- Python


class _PathLevels(ast.NodeVisitor):
    """Follows `__file__`-based paths: each expression's level is how many folders above the
    file's own folder it points (0: the file's folder; `Path(__file__)` itself is -1)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.limit = _depth(name)
        self.bound: dict[str, int] = {}
        self.hits: list[Hit] = []
        self.peak = -1  # the highest level an expression reached on its way (see _joined)

    def level(self, node: ast.expr) -> int | None:
        match node:
            case ast.Name(id="__file__"):
                return -1
            case ast.Name(id=bound) if bound in self.bound:
                return self.bound[bound]
            case ast.Call(func=ast.Name(id="Path" | "PurePath" | "PosixPath"), args=[arg]):
                return self.level(arg)
            case ast.Call(func=ast.Attribute(attr="resolve" | "absolute", value=inner)):
                return self.level(inner)
            case ast.Call(func=ast.Attribute(attr="dirname"), args=[arg]):
                up = self.level(arg)
                return None if up is None else up + 1
            case ast.Call(func=ast.Attribute(attr="join"), args=[first, *rest]):
                return self._joined(self.level(first), rest)
            case ast.Attribute(attr="parent", value=inner):
                level = self.level(inner)
                return None if level is None else level + 1
            case ast.Subscript(
                value=ast.Attribute(attr="parents", value=inner), slice=ast.Constant(value=int(k))
            ):
                level = self.level(inner)
                return None if level is None else level + k + 1
            case ast.BinOp(op=ast.Div(), left=left, right=right):
                return self._joined(self.level(left), [right])
        return None

    def _joined(self, level: int | None, parts: list[ast.expr]) -> int | None:
        if level is None:
            return None
        self.peak = max(self.peak, level)
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                for segment in PurePosixPath(part.value).parts:
                    level += 1 if segment == ".." else -1
                    self.peak = max(self.peak, level)
        return level

    def visit_Assign(self, node: ast.Assign) -> None:
        level = self.level(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name) and level is not None:
                self.bound[target.id] = level
        self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            self.peak = -1
            level = self.level(node)
            if level is not None:
                highest = max(level, self.peak)
                if highest > self.limit:
                    above = highest - self.limit
                    why = f"a path from __file__ climbs {above} folder(s) above the root"
                    self.hits.append(Hit(self.name, node.lineno, why))
                return  # a path from __file__: its own `".."` parts were counted above
        if isinstance(node, ast.Call) and _is_path_call(node.func):
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and (arg.value.split("/")[0] == "..")
                ):
                    why = f"'{arg.value}' leaves the root (commands run there)"
                    self.hits.append(Hit(self.name, node.lineno, why))
        super().generic_visit(node)


def _is_path_call(func: ast.expr) -> bool:
    """Calls whose string arguments are paths: `Path(...)`, `open(...)`, `os.path.*(...)`."""
    match func:
        case ast.Name(id="Path" | "PurePath" | "PosixPath" | "open"):
            return True
        case ast.Attribute(value=ast.Attribute(attr="path", value=ast.Name(id="os"))):
            return True
    return False


def _python_paths(name: str, text: str) -> list[Hit]:
    try:
        tree = ast.parse(text, filename=name)
    except SyntaxError:
        return []
    visitor = _PathLevels(name)
    visitor.visit(tree)
    return visitor.hits


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    hits = check(root, tracked_files(root))
    for hit in hits:
        sys.stdout.write(f"{hit}\n")
    if hits:
        sys.stderr.write(f"check_self_contained: {len(hits)} place(s) read outside {root}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
