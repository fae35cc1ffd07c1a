"""Where each contract field went in FHIR, found by experiment rather than by declaration.

For every field present in a submission, `field_coverage` changes that one value (a
string gets a marker, a number grows, a flag flips, a time moves, a code takes another
allowed code), maps both versions, and lists the FHIR elements that differ. A field
whose change moves nothing in the output was dropped. Because the answer comes from
running the real mappers, it cannot drift from what they do. The generated narrative
(`text.div`) does not count: it repeats the elements, it is no home of its own.

`round_trip_differences` adds the reverse view: the fields that `unmap(map(x))` does
not give back unchanged.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, get_args, get_origin

from pydantic import BaseModel

from mappings.context import MappingContext
from mappings.contract import EncounterSubmission, units
from mappings.encounter.submission import map_submission, unmap_submission
from mappings.errors import MappingError
from mappings.jsontypes import JsonValue, Resource

MARKER = "\u00a7"
Step = str | int
Mapper = Callable[[EncounterSubmission, MappingContext], list[Resource]]


@dataclass(frozen=True)
class FieldCoverage:
    """One contract field present in the input and the FHIR elements it reaches."""

    path: str
    targets: tuple[str, ...]

    @property
    def dropped(self) -> bool:
        return not self.targets


def field_coverage(
    sub: EncounterSubmission, ctx: MappingContext, mapper: Mapper = map_submission
) -> list[FieldCoverage]:
    """Every leaf field set in `sub`, with the FHIR elements (`Type.element`) it changes."""
    baseline = _index(mapper(sub, ctx))
    report: list[FieldCoverage] = []
    for steps, value, annotation in _leaves(sub, ()):
        targets: set[str] = set()
        for variant in _variants(value, annotation):
            changed = _replace(sub, steps, variant)
            assert isinstance(changed, EncounterSubmission)
            try:
                targets = _differences(baseline, _index(mapper(changed, ctx)))
            except (MappingError, ValueError, KeyError, TypeError, ArithmeticError):
                continue  # this variant is not mappable; try the next kind of change
            if targets:
                break
        report.append(FieldCoverage(_render(steps), tuple(sorted(targets))))
    return report


def round_trip_differences(sub: EncounterSubmission, ctx: MappingContext) -> list[str]:
    """Paths of the fields that do not come back unchanged from map then unmap."""
    back = unmap_submission(map_submission(sub, ctx), ctx)
    before = sub.model_dump(mode="json", exclude_none=True)
    after = back.model_dump(mode="json", exclude_none=True)
    return sorted(_json_differences(before, after, ""))


# ---- walking the submission -------------------------------------------------------------


def _leaves(
    node: object, steps: tuple[Step, ...]
) -> Iterator[tuple[tuple[Step, ...], object, object]]:
    """(path, value, declared type) of every set leaf below a model."""
    if not isinstance(node, BaseModel):
        return
    for name, info in type(node).model_fields.items():
        value = getattr(node, name)
        if value is None:
            continue
        yield from _leaves_of(value, info.annotation, (*steps, name))


def _leaves_of(
    value: object, annotation: object, steps: tuple[Step, ...]
) -> Iterator[tuple[tuple[Step, ...], object, object]]:
    if isinstance(value, BaseModel):
        yield from _leaves(value, steps)
    elif isinstance(value, list):
        item_type = _list_item_type(annotation)
        for index, item in enumerate(value):
            yield from _leaves_of(item, item_type, (*steps, index))
    else:
        yield steps, value, annotation


def _replace(node: object, steps: Sequence[Step], new: object) -> object:
    """A copy of `node` with the value at `steps` replaced (no validation: a probe)."""
    if not steps:
        return new
    head, rest = steps[0], steps[1:]
    if isinstance(node, BaseModel) and isinstance(head, str):
        return node.model_copy(update={head: _replace(getattr(node, head), rest, new)})
    if isinstance(node, list) and isinstance(head, int):
        items = list(node)
        items[head] = _replace(items[head], rest, new)
        return items
    raise TypeError(f"cannot follow {head!r}")


def _render(steps: Sequence[Step]) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


# ---- changing one value -----------------------------------------------------------------


def _variants(value: object, annotation: object) -> list[object]:
    """Changed values to try, most telling first."""
    choices = [c for c in _literal_choices(annotation) if c != value]
    if choices:
        return choices
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return [value + 1, value - 1, value * 1.01, value * 0.99]
    if isinstance(value, datetime):
        return [value + timedelta(minutes=1), value - timedelta(minutes=1)]
    if isinstance(value, date):
        return [value - timedelta(days=1)]
    if isinstance(value, str):
        return [*_other_units(value), value + MARKER, value[:-1] + MARKER, value + "0"]
    return []


def _other_units(unit: str) -> list[str]:
    """Other units of any measurement that accepts `unit` (a unit's own change must map)."""
    quantities = [q for q in vars(units).values() if isinstance(q, units.Quantity)]
    return [u for q in quantities if unit in q.units for u in q.units if u != unit]


def _literal_choices(annotation: object) -> list[object]:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    found: list[object] = []
    if get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in get_args(annotation):
            found.extend(_literal_choices(arg))
    return found


def _list_item_type(annotation: object) -> object:
    if get_origin(annotation) is list:
        return get_args(annotation)[0]
    for arg in get_args(annotation):
        if get_origin(arg) is list:
            return get_args(arg)[0]
    return None


# ---- comparing outputs ------------------------------------------------------------------


def _index(resources: Sequence[Resource]) -> dict[str, Resource]:
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}


def _differences(before: dict[str, Resource], after: dict[str, Resource]) -> set[str]:
    found: set[str] = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        kind = str((old or new or {}).get("resourceType"))
        if old is None or new is None:
            found.add(f"{kind}.identifier")
        else:
            found.update(_json_differences(old, new, kind) - {f"{kind}.text.div"})
    return found


def _json_differences(old: JsonValue | None, new: JsonValue | None, path: str) -> set[str]:
    """Element paths (list indexes dropped) where two JSON values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: set[str] = set()
        for key in old.keys() | new.keys():
            found |= _json_differences(old.get(key), new.get(key), _join(path, key))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = set()
        for a, b in zip(old, new, strict=True):
            found |= _json_differences(a, b, path)
        return found
    return set() if old == new else {path}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
