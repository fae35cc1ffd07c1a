"""Each tenant's clinic protocol: the shipped defaults, with the tenant's override file.

`ADAPTER_PROTOCOL_DIR` names a folder of override files, one per tenant:
`<tenant>.toml`, in the shape of `mappings/protocol/defaults.toml` (docs/protocol.md). A
tenant without a file has the defaults. The settings check every file when they are read
(`check_protocol_dir`), so the service and every command refuse to start on a bad one,
naming the file and the entry; the files are read again only when one changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from mappings.protocol import ClinicProtocol, default_protocol, load_protocol

SUFFIX = ".toml"
_TENANT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_Stamp = tuple[tuple[str, float, int], ...]
_cache: dict[str, tuple[_Stamp, Mapping[str, ClinicProtocol]]] = {}


def check_protocol_dir(folder: str) -> Mapping[str, ClinicProtocol]:
    """Every tenant's protocol in `folder`; `ProtocolError` (a `ValueError`) naming the file
    and the entry of the first bad one, `ValueError` for a folder that cannot be used."""
    path = Path(folder)
    if not path.is_dir():
        raise ValueError("no such folder: must be a folder of <tenant>.toml files, or empty")
    files = sorted(p for p in path.iterdir() if p.suffix == SUFFIX and p.is_file())
    stamp = tuple((p.name, p.stat().st_mtime, p.stat().st_size) for p in files)
    cached = _cache.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found: dict[str, ClinicProtocol] = {}
    for file in files:
        tenant = file.name.removesuffix(SUFFIX)
        if not _TENANT.fullmatch(tenant):
            raise ValueError(f"{file.name}: the file name must be a tenant name + .toml")
        found[tenant] = load_protocol(file.read_text("utf-8"), origin=file.name)
    _cache[folder] = (stamp, found)
    return found


def tenant_protocol(folder: str, tenant: str) -> ClinicProtocol:
    """The protocol of `tenant`: its override file's, else the shipped defaults."""
    if not folder:
        return default_protocol()
    return check_protocol_dir(folder).get(tenant, default_protocol())
