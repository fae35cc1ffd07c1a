"""The Groups a `Group/{id}/$export` may name, per tenant.

Every tenant has `all-patients`: every Patient it holds, as of the export. An operator may
define more in `ADAPTER_EXPORT_GROUPS_FILE`, a JSON list of
`{"tenant": ..., "id": ..., "patients": ["<Patient logical id>", ...]}`, read and checked
at startup (a malformed entry, a repeated (tenant, id) or a redefined `all-patients` stops
the service with one line naming the entry). A Group of another tenant is not found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapter.api.auth.callers import TENANT_PATTERN
from adapter.api.auth.keys_file import read_json_list_file, validation_problems
from adapter.errors import ConfigError

GROUPS_FILE_VARIABLE = "ADAPTER_EXPORT_GROUPS_FILE"
ALL_PATIENTS = "all-patients"
ID = r"^[A-Za-z0-9\-.]{1,64}$"

# (tenant, group id) -> the logical ids of its Patients.
Groups = Mapping[tuple[str, str], frozenset[str]]


class GroupEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: Annotated[str, Field(pattern=TENANT_PATTERN)]
    id: Annotated[str, Field(pattern=ID)]
    patients: list[Annotated[str, Field(pattern=ID)]]


def load_groups(path: str) -> Groups:
    """The operator's Groups in `path` (none when empty); `ConfigError` naming the entry."""
    if not path:
        return {}
    raw = read_json_list_file(path, GROUPS_FILE_VARIABLE, "groups")
    if not isinstance(raw, list):
        raise _refused(path, "must hold a JSON list of {tenant, id, patients} entries")
    groups: dict[tuple[str, str], frozenset[str]] = {}
    for number, item in enumerate(raw, 1):
        where = f"entry {number} of {len(raw)}"
        try:
            entry = GroupEntry.model_validate(item)
        except ValidationError as exc:
            raise _refused(path, f"{where}: {validation_problems(exc)}") from None
        if entry.id == ALL_PATIENTS:
            raise _refused(path, f"{where}: id: {ALL_PATIENTS} is every tenant's own Group")
        if (entry.tenant, entry.id) in groups:
            raise _refused(path, f"{where}: repeats the tenant and id of an earlier entry")
        groups[(entry.tenant, entry.id)] = frozenset(entry.patients)
    return groups


def _refused(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{GROUPS_FILE_VARIABLE} ({path}): {problem}")
