"""The searches tests/integration/test_fhir_r4_search_on_sandbox.py runs on `/fhir` and on the
sandbox: one case per served type and R4 search parameter of our CapabilityStatement, per
modifier and date prefix, and the chains.

Which cases exist is known before any data (`CASES`, test ids); the value each one searches
for is picked from the pushed data (`build`): a value some resources of the type hold and
others do not (a parameter that were silently ignored would then answer every resource).
Where no value splits the type (one Organization; every Observation `final`), the case also
searches for a value none holds. Values are picked from our search index's rows of each
resource (`index_rows`): that only chooses what to ask; whether the answer is right is the
sandbox's word, or, where HAPI cannot be asked (`Query.reason`), ids computed here from the
resources themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from adapter.api.fhir.capability import capability_statement
from adapter.api.fhir.criteria import CANONICAL_PARAMETERS
from adapter.store.search_index import IndexRow, index_rows, normalised
from tests.integration.r4_search_data import Pushed
from tests.integration.r4_search_expected import refused_by_hapi

R4 = "http://hl7.org/fhir/SearchParameter/"
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
NOWHERE = "no-such-value-anywhere"
# Reference parameters whose target type is fixed in R4 (the `:Type` modifier is then
# redundant but allowed, and a chain needs no `:Type`).
TARGETS = {
    "patient": "Patient",
    "subject": "Patient",
    "encounter": "Encounter",
    "context": "Encounter",
}


@dataclass(frozen=True)
class Query:
    """One search: its parameters, asked of `/fhir` and of the sandbox (there with the
    sandbox's ids: r4_search_data.for_sandbox). With `reason`, HAPI is not asked (it refuses
    the query, see r4_search_expected): `expected`, computed from the data, is."""

    ours: tuple[tuple[str, str], ...]
    reason: str = ""
    expected: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Case:
    resource_type: str
    label: str
    queries: tuple[Query, ...] = field(default=())


@functools.cache
def r4_parameters() -> list[tuple[str, str, str]]:
    """(type, name, kind) of every search parameter our CapabilityStatement gives an R4
    definition (`http://hl7.org/fhir/SearchParameter/...`)."""
    statement: Any = capability_statement("http://127.0.0.1/fhir")
    return [
        (resource["type"], param["name"], param["type"])
        for resource in statement["rest"][0]["resource"]
        for param in resource.get("searchParam", [])
        if str(param.get("definition", "")).startswith(R4)
    ]


def _labels() -> Iterator[tuple[str, str]]:
    for resource_type, name, kind in r4_parameters():
        yield resource_type, name
        if name.startswith("_"):
            continue
        if kind == "token":
            yield resource_type, f"{name}:not"
        if kind == "string":
            yield resource_type, f"{name}:exact"
            yield resource_type, f"{name}:contains"
        if kind == "date":
            yield from ((resource_type, f"{name}={p}") for p in PREFIXES if p != "eq")
        if kind == "reference" and (resource_type, name) not in CANONICAL_PARAMETERS:
            yield resource_type, f"{name}:{TARGETS.get(name, '[type]')}"
        if kind == "reference":
            yield resource_type, f"{name}:identifier"
        yield resource_type, f"{name}:missing"


def _chain_labels() -> Iterator[tuple[str, str]]:
    """The chains R4 clients send: to the Patient (by `patient`, or `subject:Patient`) and
    to the Encounter, and the reverse chains (`_has`) to a Patient and an Encounter."""
    r4 = {(t, n) for t, n, kind in r4_parameters() if kind == "reference"}
    for resource_type, name in sorted(r4):
        if name == "patient":
            for inner in ("identifier", "name", "birthdate"):
                yield resource_type, f"patient.{inner}"
        elif name == "subject":
            yield resource_type, "subject:Patient.identifier"
        elif name in ("encounter", "context") and TARGETS.get(name) == "Encounter":
            yield resource_type, f"{name}.identifier"
    yield from OTHER_CHAINS
    yield "Patient", "_has:Observation:patient:code"
    yield "Encounter", "_has:Observation:encounter:code"
    yield "Patient", "_has:Condition:subject:code"


# Chains to the other resources our data refers to (`:Type` where R4 allows several).
OTHER_CHAINS = (
    ("AllergyIntolerance", "recorder:Practitioner.identifier"),
    ("DetectedIssue", "author:Device.identifier"),
    ("Encounter", "participant:Practitioner.identifier"),
    ("Encounter", "practitioner.identifier"),
    ("Encounter", "service-provider.identifier"),
    ("MedicationAdministration", "performer:Practitioner.identifier"),
    ("MedicationAdministration", "request.identifier"),
    ("MedicationStatement", "source:Practitioner.identifier"),
    ("Observation", "performer:Practitioner.identifier"),
    ("Patient", "organization.identifier"),
    ("PractitionerRole", "practitioner.identifier"),
    ("Procedure", "performer:Practitioner.identifier"),
    ("Provenance", "agent:Practitioner.identifier"),
    ("QuestionnaireResponse", "source:Patient.identifier"),
)


CASES = list(_labels())
CHAINS = list(_chain_labels())
# Parameters together: `&` must all hold (AND), `,` is either value (OR).
COMBINED = [
    ("Observation", "patient&code"),
    ("Observation", "code&date"),
    ("Observation", "date=ge&date=le"),
    ("Observation", "code,code"),
    ("Observation", "category,category&status"),
    ("Encounter", "patient&date"),
    ("MedicationAdministration", "context&code"),
    ("Condition", "code&clinical-status:not"),
    ("Patient", "gender,gender&birthdate=ge"),
]


def build(pushed: Pushed, resource_type: str, label: str) -> Case:
    """The queries of one case, with values from `pushed`."""
    if (resource_type, label) in CHAINS:
        return build_chain(pushed, resource_type, label)
    if (resource_type, label) in COMBINED:
        pairs = tuple(
            pair for part in label.split("&") for pair in _part(pushed, resource_type, part)
        )
        return Case(resource_type, label, (Query(pairs),))
    name, _, rest = label.partition("=")
    param, _, modifier = name.partition(":")
    kind = _kind(resource_type, param)
    rows = _rows(pushed, resource_type, param)
    total = len(pushed.of_type(resource_type))
    if param == "_id":
        some = sorted(pushed.of_type(resource_type))[: max(1, total // 2)]
        return Case(resource_type, label, (Query((("_id", ",".join(some)),)),))
    if param == "_lastUpdated":
        return Case(resource_type, label, tuple(_last_updated(pushed, resource_type)))
    if modifier == "missing":
        queries = (Query(((name, "true"),)), Query(((name, "false"),)))
        return Case(resource_type, label, queries)
    if modifier == "identifier":
        rows = _rows(pushed, resource_type, name)
        made = _token(name, "", rows, total, alone=False)
        return Case(resource_type, label, tuple(_where_hapi_cannot(pushed, resource_type, made)))
    maker = _MAKERS[kind]
    made = maker(param, modifier or rest, rows, total)
    return Case(resource_type, label, tuple(_where_hapi_cannot(pushed, resource_type, made)))


def _part(pushed: Pushed, resource_type: str, part: str) -> tuple[tuple[str, str], ...]:
    """One parameter of a combined case: its case's first query, or (`name,name`) the two
    values that split the type best, as alternatives."""
    name, comma, _ = part.partition(",")
    if not comma:
        return build(pushed, resource_type, part).queries[0].ours
    rows = _rows(pushed, resource_type, name)
    holders = _group(rows, lambda r: (r.system, r.value))
    first, second = _splitting(holders, len(rows))[:2]
    return ((name, ",".join(f"{system}|{code}" for system, code in (first, second))),)


def build_chain(pushed: Pushed, resource_type: str, label: str) -> Case:
    """A chain's query: the first patient's MRN, name and birth date (the same example's
    patients share the last two), the first encounter's identifier, a code some patients'
    (or encounters') Observations or Conditions have and others' do not."""
    patient = pushed.of_type("Patient")[sorted(pushed.of_type("Patient"))[0]]
    tail = label.rsplit(".", 1)[-1]
    if label.startswith("_has:"):
        _, source, via, _ = label.split(":")
        value = _splitting_code(pushed, source, via, resource_type)
    elif (resource_type, label) in OTHER_CHAINS:
        value = _identifier(_splitting_target(pushed, resource_type, label))
    elif tail == "identifier" and label.startswith(("encounter", "context")):
        encounter = pushed.of_type("Encounter")[sorted(pushed.of_type("Encounter"))[0]]
        value = _identifier(encounter)
    elif tail == "identifier":
        value = _identifier(patient)
    elif tail == "name":
        value = normalised(patient["name"][0]["given"][0])[:3]
    else:
        value = f"eq{patient['birthDate']}"
    return Case(resource_type, label, (Query(((label, value),)),))


def _splitting_target(pushed: Pushed, resource_type: str, label: str) -> dict[str, Any]:
    """The resource a chain's reference parameter names that splits the type best."""
    param, _, target = label.split(".")[0].partition(":")
    rows = _rows(pushed, resource_type, param)
    holders = _group(rows, lambda r: r.value)
    wanted = [v for v in _splitting(holders, len(rows)) if not target or v.startswith(f"{target}/")]
    found_type, found_id = str(wanted[0]).split("/")
    return pushed.of_type(found_type)[found_id]


def _identifier(resource: dict[str, Any]) -> str:
    identifiers = resource["identifier"]
    first = identifiers[0] if isinstance(identifiers, list) else identifiers
    return f"{first['system']}|{first['value']}"


def _splitting_code(pushed: Pushed, source: str, via: str, target: str) -> str:
    """A `system|code` of `source` resources whose `via` names some `target`s, not all."""
    held: dict[str, set[str]] = {}
    for res in pushed.of_type(source).values():
        reference = res.get("subject" if via == "patient" else via, {}).get("reference", "")
        if not reference.startswith(f"{target}/"):
            continue
        for coding in res.get("code", {}).get("coding", []):
            held.setdefault(f"{coding['system']}|{coding['code']}", set()).add(reference)
    best = _splitting(held, len(pushed.of_type(target)))
    return str(best[0])


def _kind(resource_type: str, param: str) -> str:
    for found_type, name, kind in r4_parameters():
        if (found_type, name) == (resource_type, param):
            return kind
    raise KeyError(f"{resource_type}:{param}")


_Rows = dict[str, list[IndexRow]]


def _rows(pushed: Pushed, resource_type: str, param: str) -> _Rows:
    """Each resource's index rows of `param` (by our id)."""
    return {
        logical_id: [r for r in index_rows(resource_type, res) if r.param == param]
        for logical_id, res in pushed.of_type(resource_type).items()
    }


def _splitting(holders: dict[Any, set[str]], total: int) -> list[Any]:
    """Values by how well they split the type: some resources hold them, not all; the
    nearest to half first (ties in a stable order)."""
    return sorted(
        holders,
        key=lambda v: (len(holders[v]) in (0, total), abs(len(holders[v]) * 2 - total), repr(v)),
    )


def _group(rows: _Rows, key: Callable[[IndexRow], Any]) -> dict[Any, set[str]]:
    holders: dict[Any, set[str]] = {}
    for logical_id, found in rows.items():
        for row in found:
            holders.setdefault(key(row), set()).add(logical_id)
    return holders


def _with_nowhere(name: str, best: Query | None, splits: bool, nowhere: str) -> Iterator[Query]:
    if best is not None:
        yield best
    if best is None or not splits:
        yield Query(((name, nowhere),))


def _token(
    name: str, modifier: str, rows: _Rows, total: int, *, alone: bool = True
) -> Iterator[Query]:
    holders = _group(rows, lambda r: (r.system, r.value))
    ordered = _splitting(holders, total)
    best = None
    if ordered:
        system, code = ordered[0]
        value = f"{system}|{code}" if system else code
        best = Query(((f"{name}:not" if modifier == "not" else name, value),))
    splits = bool(ordered) and len(holders[ordered[0]]) < total
    shown = f"{name}:not" if modifier == "not" else name
    yield from _with_nowhere(shown, best, splits, NOWHERE)
    if ordered and not modifier and alone:
        system, code = ordered[0]
        yield Query(((name, code),))  # the code alone, of any system
        if system:
            yield Query(((name, f"{system}|"),))  # any code of the system


def _string(name: str, modifier: str, rows: _Rows, total: int) -> Iterator[Query]:
    holders = _group(rows, lambda r: r.system)
    ordered = [v for v in _splitting(holders, total) if v and len(v) >= 4]
    if not ordered:
        yield Query(((f"{name}:{modifier}" if modifier else name, NOWHERE),))
        return
    written = ordered[0]
    if modifier == "exact":
        yield Query(((f"{name}:exact", written),))
        yield Query(((f"{name}:exact", written.upper()),))  # case matters: none
    elif modifier == "contains":
        yield Query(((f"{name}:contains", normalised(written)[1:4].upper()),))
    else:
        # Starts with, case and accents aside: `García` is found by `garc`.
        yield Query(((name, normalised(written)[:4]),))
        yield Query(((name, written.upper()),))  # the whole of it, accents kept


def _reference(name: str, modifier: str, rows: _Rows, total: int) -> Iterator[Query]:
    holders = _group(rows, lambda r: r.value)
    ordered = _splitting(holders, total)
    if not ordered:  # no resource of the type refers by it: no type to name either
        yield Query(((name, f"{TARGETS.get(name, 'Patient')}/{NOWHERE}"),))
        return
    shown = name
    value = str(ordered[0])
    if modifier:  # `subject:Patient=<id>`: the bare id, the type in the modifier
        target, value = value.split("/", 1)
        shown = f"{name}:{target}"
    yield Query(((shown, value),))


def _date(name: str, prefix: str, rows: _Rows, total: int) -> Iterator[Query]:
    """The middle day the resources' dates start on (so that before and after it, both
    hold some); with no prefix also its month and year, and the middle moment to the
    second, in UTC and at another offset."""
    del total
    starts = sorted({r.date_lo for found in rows.values() for r in found if r.date_lo})
    starts = [moment for moment in starts if moment.year > 1]
    if not starts:
        yield Query(((name, f"{prefix or 'eq'}2026-11-21"),))
        return
    days = sorted({moment.date() for moment in starts})
    yield Query(((name, f"{prefix or 'eq'}{days[len(days) // 2].isoformat()}"),))
    if not prefix:  # at the precision of a month and of a year, then to the second
        middle = days[len(days) // 2]
        yield Query(((name, f"{middle:%Y-%m}"),))
        yield Query(((name, f"{middle:%Y}"),))
        yield Query(((name, f"ge{middle:%Y}"),))
        moment = starts[len(starts) // 2]
        yield Query(((name, f"ge{moment:%Y-%m-%dT%H:%M:%S}Z"),))
        local = moment.astimezone(timezone(timedelta(hours=-5)))
        yield Query(((name, f"lt{local.isoformat(timespec='seconds')}"),))


_MAKERS: dict[str, Callable[[str, str, _Rows, int], Iterator[Query]]] = {
    "token": _token,
    "string": _string,
    "reference": _reference,
    "date": _date,
}


def _last_updated(pushed: Pushed, resource_type: str) -> Iterator[Query]:
    """Each side stamps its own `meta.lastUpdated` when it stores a resource: the sandbox's
    times are not ours, so the answers are checked against ours."""
    reason = "meta.lastUpdated is each server's own time of storing"
    stamps = {
        f"{resource_type}/{i}": _instant(res["meta"]["lastUpdated"])
        for i, res in pushed.of_type(resource_type).items()
    }
    middle = sorted(stamps.values())[len(stamps) // 2]
    second = middle.replace(microsecond=0)
    text = second.strftime("%Y-%m-%dT%H:%M:%SZ")
    after = second + timedelta(seconds=1)
    yield Query(
        (("_lastUpdated", f"ge{text}"),),
        reason,
        frozenset(k for k, t in stamps.items() if t >= second),
    )
    yield Query(
        (("_lastUpdated", f"lt{text}"),),
        reason,
        frozenset(k for k, t in stamps.items() if t < second),
    )
    yield Query(
        (("_lastUpdated", f"sa{text}"),),
        reason,
        frozenset(k for k, t in stamps.items() if t >= after),
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _where_hapi_cannot(
    pushed: Pushed, resource_type: str, queries: Iterator[Query]
) -> Iterator[Query]:
    """The queries, those HAPI refuses made to be checked against ids from the data."""
    for query in queries:
        ((name, value),) = query.ours
        refused = refused_by_hapi(pushed, resource_type, name, value)
        yield query if refused is None else Query(query.ours, *refused)
