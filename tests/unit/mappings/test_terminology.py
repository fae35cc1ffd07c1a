from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from mappings import terminology
from mappings.contract.fields import icd10cm_problem
from mappings.errors import UnknownCode

TABLES = sorted(
    p.name.removesuffix(".csv")
    for p in resources.files("mappings").joinpath("terminology").iterdir()
    if p.name.endswith(".csv") and p.name != "systems.csv"
)


@pytest.mark.parametrize("name", TABLES)
def test_table__loads_with_known_systems_and_certainties(name: str) -> None:
    rows = terminology.table(name)
    assert rows, f"{name}.csv is empty"
    for codes in rows.values():
        for code in codes:
            assert code.code
            assert code.code.strip() == code.code
            assert code.certainty in terminology.CERTAINTIES


@pytest.mark.parametrize("name", TABLES)
def test_table__no_code_maps_back_to_two_keys(name: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for key, codes in terminology.table(name).items():
        for code in codes:
            other = seen.setdefault((code.system, code.code), key)
            # Several keys may share a standard code (MDD for TRD), never a local one.
            if code.system == terminology.CLINIC_SYSTEM:
                assert other == key, f"{name}: local code {code.code} used by {other} and {key}"


def test_code__unknown_key__raises_unknown_code_naming_table() -> None:
    with pytest.raises(UnknownCode, match="indications"):
        terminology.code("indications", "no-such-thing")


def test_systems__every_alias_is_a_uri_or_the_clinic_placeholder() -> None:
    for alias, uri in terminology.systems().items():
        assert uri.startswith(("http://", "https://")) or uri == terminology.CLINIC_SYSTEM, alias


def test_icd10cm_codes__every_table__billable_in_the_cms_list() -> None:
    icd = terminology.systems()["icd10cm"]
    found = [
        (table.stem, code.code)
        for table in sorted(Path(terminology.__file__).parent.glob("*.csv"))
        if table.stem != "systems"
        for codes in terminology.table(table.stem).values()
        for code in codes
        if code.system == icd
    ]
    assert len(found) > 10
    assert [(t, c, icd10cm_problem(c)) for t, c in found if icd10cm_problem(c)] == []
