"""HAPI FHIR's Java generic client (tests/java-client/): built once, run as a subprocess.

The build is Maven's, cached in tests/java-client/target/ (gitignored) and made again only
when pom.xml or src/ changed, like sandbox/build: a stamp holds the hash of both.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "java-client"
TARGET = PROJECT / "target"
STAMP = TARGET / ".build-stamp"
MAIN_CLASS = "org.example.fhirclient.ConformanceScenario"
BUILD_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def steps(self) -> dict[str, str]:
        """`step <name>: <ok|skipped>` lines, by name."""
        found = {}
        for line in self.stdout.splitlines():
            name, _, verdict = line.removeprefix("step ").rpartition(": ")
            if line.startswith("step ") and name:
                found[name] = verdict
        return found


def missing_tools() -> list[str]:
    return [tool for tool in ("mvn", "java") if shutil.which(tool) is None]


def build() -> None:
    """`mvn package` unless the stamp says the sources are those of the last build."""
    digest = _sources_digest()
    jar = TARGET / "fhir-java-client.jar"
    if jar.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    shutil.rmtree(TARGET / "lib", ignore_errors=True)  # no jar of an older version left
    command = ["mvn", "-q", "-B", "-f", str(PROJECT / "pom.xml"), "package", "-DskipTests"]
    subprocess.run(command, check=True, timeout=BUILD_TIMEOUT_SECONDS)
    STAMP.write_text(digest)


def run(arguments: list[str]) -> Run:
    classpath = f"{TARGET / 'fhir-java-client.jar'}:{TARGET / 'lib'}/*"
    command = ["java", "-XX:TieredStopAtLevel=1", "-cp", classpath, MAIN_CLASS, *arguments]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _sources_digest() -> str:
    files = [PROJECT / "pom.xml", *sorted((PROJECT / "src").rglob("*"))]
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(PROJECT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
