"""The order entries that refer to each other are sent in: each after those it names."""

from __future__ import annotations

from adapter.ehr.ordering import dependency_groups, dependency_order


def test_dependency_order__no_references__index_order() -> None:
    assert dependency_order([set(), set(), set()]) == [0, 1, 2]


def test_dependency_order__referenced_first__otherwise_index_order() -> None:
    assert dependency_order([{2}, set(), set(), {0}]) == [2, 0, 1, 3]


def test_dependency_order__refers_to_itself__no_cycle_of_its_own() -> None:
    assert dependency_groups([{0}, {0, 1}]) == [[0], [1]]


def test_dependency_groups__cycle__one_group_ascending_after_what_it_names() -> None:
    # 1 -> 3 -> 2 -> 1 is a cycle that also names 4; 0 names the cycle.
    depends_on: list[set[int]] = [{1}, {3}, {1}, {2, 4}, set()]
    assert dependency_groups(depends_on) == [[4], [1, 2, 3], [0]]


def test_dependency_order__chain_of_100000__reversed_without_recursion() -> None:
    count = 100_000  # far past Python's recursion limit
    depends_on = [{n + 1} if n + 1 < count else set() for n in range(count)]
    assert dependency_order(depends_on) == list(reversed(range(count)))


def test_dependency_groups__one_long_cycle__one_group() -> None:
    count = 20_000
    depends_on = [{(n + 1) % count} for n in range(count)]
    assert dependency_groups(depends_on) == [list(range(count))]
