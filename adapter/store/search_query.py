"""What a FHIR search asks of the store, parsed (by `adapter.api.fhir.params`): plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_COUNT = 50


@dataclass(frozen=True)
class Token:
    """`system|code` (`system` "" for `|code`, None for a bare `code`; `code` "" for
    `system|`, any code of the system)."""

    system: str | None
    code: str


@dataclass(frozen=True)
class DateBound:
    """A date parameter's prefix and the range [lo, hi) its value covers."""

    prefix: str
    lo: datetime
    hi: datetime


@dataclass(frozen=True)
class Chain:
    """What a chained (`patient.identifier`) or reverse-chained (`_has:Observation:patient:
    code`) parameter looks up: `param` (of `kind`) of the resources of `target`; for a
    reverse chain, those whose reference parameter `via` names the searched resource."""

    target: str
    param: str
    kind: str
    via: str | None = None


@dataclass(frozen=True)
class Criterion:
    """One occurrence of a parameter: its alternatives (OR), and its modifier (`missing`,
    `not`, `exact`, `contains`, `identifier`; "" for none) or chain. A value is a `Token`
    (token, `:identifier`), a `DateBound`, or text: a reference `Type/id` (`*/id` for any
    type), a string as asked, or `true`/`false` for `:missing`."""

    param: str
    kind: str
    values: tuple[Token | DateBound | str, ...]
    modifier: str = ""
    chain: Chain | None = None


@dataclass(frozen=True)
class Include:
    """`_include`/`_revinclude` of `Source:param[:Target]`."""

    source: str
    param: str
    target: str | None


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: str | None = None
    descending: bool = False
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    only_count: bool = False
    unknown: list[str] = field(default_factory=list)
    summary: str | None = None
    """`_summary` true, text or data (None: the whole resource; count is `only_count`)."""
    elements: tuple[str, ...] = ()
    """`_elements`: the top-level elements asked for (empty: all)."""


@dataclass(frozen=True)
class Snapshot:
    """The store as of a search's first page: its highest resource key, and the time."""

    pk: int
    at: datetime


@dataclass(frozen=True)
class Position:
    """Where a page starts: after (`forward`) or before the row (`sort_key`, `pk`)."""

    sort_key: Any
    pk: int
    forward: bool = True
