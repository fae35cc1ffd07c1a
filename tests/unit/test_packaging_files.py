"""Docker and the lock files as documented: facts a test can read, since neither an image nor
a fresh index can be had here.

- docker-compose.yml mounts only files the repository has, or that the README's Docker
  section makes first; every image is pinned, HAPI FHIR to the sandbox's version.
- The Dockerfile installs the hash-checked lock file, as `make run` does.
- requirements/*.txt hold every dependency of pyproject.toml at a version it allows, the
  same version in both, and the build backend pyproject.toml names.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAVEN = "{http://maven.apache.org/POM/4.0.0}"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _docker_section() -> str:
    text = README.read_text()
    match = re.search(r"^## Docker\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, "README.md has a Docker section"
    return match.group(1)


def _tracked() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(listed.splitlines())


def test_compose__every_mounted_file_is_tracked_or_made_by_the_documented_command() -> None:
    section = _docker_section()
    mounts = [
        volume.split(":")[0]
        for service in _compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(("./", "/"))
    ]
    assert mounts == ["./api-keys.json"]
    for mount in mounts:
        name = mount.removeprefix("./")
        if name in _tracked():
            continue
        making = [line for line in section.splitlines() if "keys new" in line and name in line]
        assert making, f"{mount}: no command in the README's Docker section makes it"
        assert section.index(making[0]) < section.index("docker compose up"), "made first"


def test_compose__keys_file_variable_names_the_mounted_file() -> None:
    adapter = _compose()["services"]["adapter"]
    (mount,) = adapter["volumes"]
    assert mount.split(":")[1] == adapter["environment"]["ADAPTER_API_KEYS_FILE"]


def test_compose__images_pinned_hapi_at_the_sandboxs_version() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if "image" in service and "build" not in service:
            tag = service["image"].partition(":")[2]
            assert re.fullmatch(r"v?\d+(\.\d+)+(-\d+)?", tag), f"{name}: {tag} moves"
    pom = ElementTree.parse(ROOT / "sandbox" / "pom.xml").getroot()
    hapi_version = pom.findtext(f"{MAVEN}properties/{MAVEN}hapi.version")
    assert hapi_version
    assert re.fullmatch(
        rf"hapiproject/hapi:v{re.escape(hapi_version)}-\d+", services["hapi"]["image"]
    )


def test_dockerfile__installs_the_hash_checked_lock_then_the_project_alone() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", text, re.MULTILINE), "base image pinned"
    assert "COPY requirements/run.txt" in text
    assert "pip install --require-hashes --no-deps -r requirements/run.txt" in text
    assert "pip install --no-deps --no-build-isolation ." in text
    installs = re.findall(r"pip install[^\n]*", text)
    assert len(installs) == 2, installs


# -- the lock files ---------------------------------------------------------------------------


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(name: str) -> dict[str, str]:
    """The `package==version` lines of requirements/<name>.txt, every one with hashes."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", text, re.MULTILINE))
    blocks = re.split(r"^(?=[A-Za-z0-9._-]+==)", text, flags=re.MULTILINE)[1:]
    assert all("--hash=sha256:" in block for block in blocks), f"{name}.txt: a pin lacks hashes"
    return {canonicalize_name(package): version for package, version in pins.items()}


def _needs(*extras: str) -> list[Requirement]:
    project = _pyproject()["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(text) for text in listed]


@pytest.mark.parametrize(("lock", "extras"), [("run", ("postgres",)), ("dev", ("postgres", "dev"))])
def test_lock__every_dependency_pinned_at_a_version_pyproject_allows(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _pins(lock)
    environment = {"sys_platform": sys.platform}
    for need in _needs(*extras):
        if need.marker is not None and not need.marker.evaluate(environment):
            continue
        pinned = pins.get(canonicalize_name(need.name))
        assert pinned is not None, f"{lock}.txt lacks {need.name}: run `make lock`"
        assert need.specifier.contains(pinned, prereleases=True), (
            f"{lock}.txt pins {need.name}=={pinned}, outside {need.specifier}: run `make lock`"
        )


def test_lock__run_is_dev_s_versions_without_the_dev_tools() -> None:
    run, dev = _pins("run"), _pins("dev")
    assert {name: dev.get(name) for name in run} == run
    assert "pytest" not in run
    assert "responses" not in run, "only tests use it (the dev extra)"


def test_lock__build_backend_pinned_as_pyproject_names_it() -> None:
    requires = [Requirement(text) for text in _pyproject()["build-system"]["requires"]]
    written = (ROOT / "requirements" / "build.in").read_text().splitlines()
    assert [line for line in written if not line.startswith("#")] == [str(r) for r in requires]
    for lock in ("run", "dev"):
        pins = _pins(lock)
        for need in requires:
            assert need.specifier.contains(pins[canonicalize_name(need.name)])


def test_bootstrap__installs_from_the_lock_files_with_hashes() -> None:
    script = (ROOT / "scripts" / "bootstrap-venv").read_text()
    assert 'install --quiet --require-hashes --no-deps -r "$lock"' in script
    assert "--no-deps --no-build-isolation -e ." in script
    assert (ROOT / "Makefile").read_text().count("scripts/lock") == 1


def test_packages__every_library_the_service_imports_is_a_run_dependency() -> None:
    """`make run` installs requirements/run.txt only: a module of adapter/ or mappings/
    importing a dev-only library would stop the service at its first start."""
    pinned = re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / "requirements/run.txt").read_text(), re.M)
    allowed = {canonicalize_name(name) for name in pinned}
    providers = importlib.metadata.packages_distributions()
    local = {"adapter", "mappings"} | set(sys.stdlib_module_names)
    imported: dict[str, str] = {}
    for package in ("adapter", "mappings"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts and path.name == "env.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top not in local:
                        imported.setdefault(top, str(path.relative_to(ROOT)))
    unlisted = {
        top: where
        for top, where in imported.items()
        if not {canonicalize_name(d) for d in providers.get(top, [])} & allowed
    }
    assert unlisted == {}
