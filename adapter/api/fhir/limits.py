"""What one `/fhir` search may ask, checked before any SQL runs.

A search's cost grows with what its query string holds: each repetition of a parameter is
one more subquery per candidate row, each `,` alternative one more comparison, each
`_revinclude` one more fan-out. So the query string is measured first, and a search past
any limit is refused with 400 naming the parameter and the limit (never a value: it may
be an identifier of a patient). The defaults are far above what an honest client sends
(two `date` bounds, a handful of codes, an `_include` or two); each is an `ADAPTER_SEARCH_*`
setting. `max_included` bounds what a page's includes add (checked as the store reads
them, see adapter.api.fhir.search), and the time budget per statement (adapter.store.budget)
bounds whatever is left.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from adapter.api.fhir.params import shown
from adapter.config import Settings
from adapter.errors import RequestRefused

INCLUDES = ("_include", "_revinclude")
# Pages up to twice the default size are ordinary work; larger ones are heavy.
HEAVY_COUNT = 100


@dataclass(frozen=True)
class SearchLimits:
    """The most a search may ask (see the module's docstring), and its statements' budget."""

    max_query_length: int = 8192
    max_parameters: int = 32
    max_repeats: int = 8
    max_alternatives: int = 100
    max_includes: int = 8
    max_included: int = 1000
    statement_timeout_ms: int = 2000

    @classmethod
    def of(cls, settings: Settings) -> SearchLimits:
        return cls(
            settings.search_max_query_length,
            settings.search_max_parameters,
            settings.search_max_repeats,
            settings.search_max_alternatives,
            settings.search_max_includes,
            settings.search_max_included,
            settings.statement_timeout_ms,
        )


def check_search(query_string: str, pairs: list[tuple[str, str]], limits: SearchLimits) -> None:
    """400 naming the parameter and the limit when the query asks more than `limits` allow."""
    check_query_length(query_string, limits)
    if len(pairs) > limits.max_parameters:
        fact = f"has {len(pairs)} parameters"
        raise _refused("the query", fact, limits.max_parameters, "PARAMETERS")
    counts = Counter(name for name, _ in pairs)
    name, times = counts.most_common(1)[0] if counts else ("", 0)
    if times > limits.max_repeats:
        raise _refused(shown(name), f"is given {times} times", limits.max_repeats, "REPEATS")
    includes = sum(counts[include] for include in INCLUDES)
    if includes > limits.max_includes:
        fact = f"are given {includes} times together"
        raise _refused("_include and _revinclude", fact, limits.max_includes, "INCLUDES")
    for name, raw in pairs:
        alternatives = raw.count(",") + 1
        if alternatives > limits.max_alternatives:
            fact = f"has {alternatives} comma-separated values"
            raise _refused(shown(name), fact, limits.max_alternatives, "ALTERNATIVES")


def is_heavy(pairs: list[tuple[str, str]]) -> bool:
    """A search that may cost a big page's work: a `_count` over `HEAVY_COUNT`, or any
    `_include`/`_revinclude`. It waits for the process's heavy thread (one at a time)."""
    for name, raw in pairs:
        if name in INCLUDES:
            return True
        if name == "_count" and raw.isascii() and raw.isdigit() and int(raw[:9]) > HEAVY_COUNT:
            return True
    return False


def check_query_length(query_string: str, limits: SearchLimits) -> None:
    """400 when the query string (as sent, percent-encoded) is longer than the limit."""
    if len(query_string) > limits.max_query_length:
        fact = f"is {len(query_string)} characters long"
        raise _refused("the query string", fact, limits.max_query_length, "QUERY_LENGTH")


def check_included(name: str, included: int, limits: SearchLimits) -> None:
    """400 when a page's `name` (`_include`/`_revinclude`) adds over `max_included`."""
    if included > limits.max_included:
        fact = "adds more resources to this page (ask a smaller _count)"
        raise _refused(name, fact, limits.max_included, "INCLUDED")


def _refused(subject: str, fact: str, limit: int, setting: str) -> RequestRefused:
    return RequestRefused(
        f"search refused: {subject} {fact}; the limit is {limit} (ADAPTER_SEARCH_MAX_{setting})"
    )
