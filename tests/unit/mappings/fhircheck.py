"""Test helpers: prove mapped JSON is exactly what the fhir.resources R4B models accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from mappings.contract import EncounterSubmission

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_NAMES = (
    "typical-ketamine-infusion",
    "esketamine-session",
    "stopped-infusion",
    "esketamine-rems-session",
)


def load_example(name: str) -> EncounterSubmission:
    return EncounterSubmission.model_validate_json((EXAMPLES_DIR / f"{name}.json").read_text())


def assert_model_equivalent(resource: dict[str, Any]) -> None:
    """The resource parses as its R4B model, and the model dumps back to the same JSON."""
    model_class = get_fhir_model_class(resource["resourceType"])
    model = model_class.model_validate(resource)
    dumped = json.loads(model.model_dump_json(exclude_none=True))
    assert dumped == resource, f"{resource['resourceType']}/{resource.get('id')} changed by model"


def assert_golden(path: Path, resources: list[dict[str, Any]]) -> None:
    """Compare with a reviewed golden file; UPDATE_GOLDEN=1 rewrites it."""
    import os

    text = json.dumps(resources, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: review the output, then run with UPDATE_GOLDEN=1"
    assert path.read_text(encoding="utf-8") == text, f"golden file differs: {path}"
