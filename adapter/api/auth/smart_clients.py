"""`ADAPTER_SMART_CLIENTS_FILE`: the SMART Backend Services clients the token endpoint serves.

The file is a JSON list of `{"client_id": ..., "tenant": ..., "scopes": [...], "jwks": {...}}`
or, instead of `jwks`, `"jwks_url"` (an http(s) URL or a file path, fetched when first
needed and refetched for an unknown `kid`, as `ADAPTER_JWKS_URL` is). `scopes` is the most
the client may be granted: it asks for some or all of them. `load_smart_clients` reads the
file once at startup and refuses, with a `ConfigError` naming the file and the entry by its
position, anything that would only fail later: not JSON, a field missing or malformed, both
or neither of `jwks` and `jwks_url`, an inline JWKS without a usable signing key, the same
`client_id` twice, and a scope that grants nothing here (checked as the keys file checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapter.api.auth.callers import TENANT_PATTERN
from adapter.api.auth.jwt_tokens import JwksCache, signing_entries
from adapter.api.auth.keys_file import read_json_list_file, scopes_problem, validation_problems
from adapter.errors import ConfigError

CLIENTS_FILE_VARIABLE = "ADAPTER_SMART_CLIENTS_FILE"
CLIENT_ID_PATTERN = r"^[\x21-\x7e]{1,100}$"
URL_PATTERN = r"^(https?://\S+|[^\s:]\S*)$"


class ClientEntry(BaseModel):
    """One entry of the clients file, checked field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
    tenant: Annotated[str, Field(pattern=TENANT_PATTERN)]
    scopes: Annotated[list[str], Field(min_length=1)]
    jwks: dict[str, Any] | None = None
    jwks_url: Annotated[str, Field(pattern=URL_PATTERN)] | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> ClientEntry:
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of `jwks` (the JWKS itself) and `jwks_url`")
        return self


@dataclass(frozen=True)
class SmartClient:
    """A registered client: its tenant, the most it may be granted, its public keys."""

    client_id: str
    tenant: str
    scopes: frozenset[str]
    keys: JwksCache


def load_smart_clients(path: str) -> Mapping[str, SmartClient]:
    """The clients in `path` by client_id (none when empty); `ConfigError` naming the entry."""
    if not path:
        return {}
    raw = read_json_list_file(path, CLIENTS_FILE_VARIABLE, "clients")
    if not isinstance(raw, list):
        raise _refused(path, "must hold a JSON list of {client_id, tenant, scopes, jwks} entries")
    clients: dict[str, SmartClient] = {}
    for number, item in enumerate(raw, 1):
        client = _client(path, f"entry {number} of {len(raw)}", item)
        if client.client_id in clients:
            raise _refused(path, f"entry {number} repeats the client_id of an earlier entry")
        clients[client.client_id] = client
    return clients


def _client(path: str, where: str, item: object) -> SmartClient:
    try:
        entry = ClientEntry.model_validate(item)
    except ValidationError as exc:
        raise _refused(path, f"{where}: {validation_problems(exc)}") from None
    problem = scopes_problem(entry.scopes)
    if problem is not None:
        raise _refused(path, f"{where}: {problem}")
    source = f"{CLIENTS_FILE_VARIABLE} {where}"
    if entry.jwks is not None:
        if not signing_entries(entry.jwks):
            raise _refused(path, f"{where}: jwks: holds no usable signing key with a `kid`")
        keys = JwksCache.of_document(entry.jwks, source)
    else:
        keys = JwksCache(str(entry.jwks_url))
    return SmartClient(entry.client_id, entry.tenant, frozenset(entry.scopes), keys)


def _refused(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{CLIENTS_FILE_VARIABLE} ({path}): {problem}")
