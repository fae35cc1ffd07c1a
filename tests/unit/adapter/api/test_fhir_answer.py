"""Stored resources as answers: `meta` spliced into the stored text, byte for byte what
parsing and re-serialising gave; and the entry count the routes hand to the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from adapter.api.fhir.common import stored_fragment, stored_resource, with_meta
from adapter.api.middleware.audit import answer_count
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, load_example

AT = datetime(2026, 11, 25, 7, 30, 1, 123456, tzinfo=UTC)
NAIVE_AT = datetime(2026, 11, 25, 7, 30, 1)  # SQLite hands times back naive (UTC)


def _parsed_way(content: str, number: int, at: datetime) -> str:
    return dumps(with_meta(content, number, at)).decode()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_stored_resource__every_mapped_resource__same_bytes_as_parsing(name: str) -> None:
    mapped = map_submission(load_example(name), MappingContext())
    assert mapped
    for resource in mapped:
        content = dumps(resource).decode()  # as the store writes it (adapter.store.accept)
        for number, at in ((1, AT), (27, NAIVE_AT)):
            spliced = stored_resource(content, number, at)
            assert spliced == _parsed_way(content, number, at)
            meta = json.loads(spliced)["meta"]
            assert (meta["versionId"], meta["lastUpdated"]) == (str(number), _instant(at))
            assert meta["security"] == json.loads(content)["meta"]["security"]


@pytest.mark.parametrize(
    "content",
    [
        '{"resourceType":"Patient","id":"p1","meta":{},"active":true}',
        '{"resourceType":"Patient","id":"p1","active":true}',
        '{"resourceType":"Patient","id":"p1","meta":{"versionId":"9","lastUpdated":"x"}}',
        '{"resourceType":"Patient","id":"p1","meta":{"tag":[]},"contained":'
        '[{"resourceType":"Patient","id":"c","meta":{"lastUpdated":"2020-01-01T00:00:00Z"}}]}',
        '{"id":"p1","resourceType":"Patient","meta":{"tag":[]}}',
        '{ "resourceType": "Patient", "id": "p1", "meta": {"tag": []} }',
        '{"resourceType":"Patient","id":"p1","meta":{"tag":[]},'
        '"name":[{"text":"J\\u00f6 \\"x\\""}]}',
    ],
)
def test_stored_resource__any_other_shape__same_json_as_parsing(content: str) -> None:
    spliced = stored_resource(content, 3, AT)
    assert json.loads(spliced) == json.loads(_parsed_way(content, 3, AT))
    assert list(json.loads(spliced)["meta"])[:2] == ["versionId", "lastUpdated"]
    assert json.loads(spliced)["meta"]["versionId"] == "3"


def test_stored_fragment__embedded_as_is_in_an_answer() -> None:
    content = '{"resourceType":"Patient","id":"p1","meta":{"tag":[]}}'
    body = orjson.dumps({"entry": [{"resource": stored_fragment(content, 2, AT)}]})
    assert json.loads(body)["entry"][0]["resource"] == json.loads(_parsed_way(content, 2, AT))


@pytest.mark.parametrize(
    ("document", "count"),
    [
        ({"resourceType": "Bundle", "entry": [{}, {}, {}]}, 3),
        ({"resourceType": "Bundle", "total": 0}, 1),
        ({"resourceType": "Patient", "id": "p1"}, 1),
        ({"created": ["Patient/a"], "updated": ["Observation/b", "Observation/c"]}, 3),
        ({"unchanged": [], "deleted": []}, 0),
    ],
)
def test_answer_count__entries_references_or_one(document: dict[str, object], count: int) -> None:
    assert answer_count(document) == count


def _instant(at: datetime) -> str:
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
