"""Terminology tables: codes as data, loaded once from the CSV files in this package.

Each table file `mappings/terminology/<table>.csv` has the columns
`key,system,code,display,certainty,note`. `system` is an alias from `systems.csv`
(or `clinic`, the clinic's own CodeSystem). A key may have several rows: they
become several codings of one concept, in file order. `certainty` is one of
`checked` (verified against a source), `established`, `uncertain`, `local`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from mappings.errors import UnknownCode

CERTAINTIES = frozenset({"checked", "established", "uncertain", "local"})
CLINIC_SYSTEM = "{clinic}"


@dataclass(frozen=True)
class Code:
    """One code of one system; `system` is a URI, or CLINIC_SYSTEM for local codes."""

    system: str
    code: str
    display: str
    certainty: str


def _rows(table: str) -> list[dict[str, str]]:
    text = resources.files(__name__).joinpath(f"{table}.csv").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def systems() -> dict[str, str]:
    """Alias -> system URI."""
    return {row["alias"]: row["uri"] for row in _rows("systems")}


@cache
def table(name: str) -> dict[str, tuple[Code, ...]]:
    """All rows of one table, grouped by key."""
    uris = systems()
    grouped: dict[str, list[Code]] = {}
    for row in _rows(name):
        if row["certainty"] not in CERTAINTIES:
            raise ValueError(f"{name}.csv: key {row['key']!r}: bad certainty {row['certainty']!r}")
        code = Code(uris[row["system"]], row["code"], row["display"], row["certainty"])
        grouped.setdefault(row["key"], []).append(code)
    return {key: tuple(codes) for key, codes in grouped.items()}


def codes(table_name: str, key: str) -> tuple[Code, ...]:
    """Every coding for `key` in `table_name`; UnknownCode if there is none."""
    try:
        return table(table_name)[key]
    except KeyError:
        raise UnknownCode(table_name, key) from None


def code(table_name: str, key: str) -> Code:
    """The first (preferred) coding for `key`."""
    return codes(table_name, key)[0]


def has(table_name: str, key: str) -> bool:
    return key in table(table_name)


@cache
def _reverse(table_name: str) -> dict[tuple[str, str], str]:
    return {(c.system, c.code): key for key, cs in table(table_name).items() for c in cs}


def key_for(table_name: str, system: str, code_value: str) -> str | None:
    """The table key whose codings include `system|code` (CLINIC_SYSTEM for local codes)."""
    return _reverse(table_name).get((system, code_value))
