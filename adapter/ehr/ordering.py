"""The order in which entries that refer to each other are sent: each after those it names.

Both ways of sending a large Bundle need it: a batch (`adapter.ehr.batch`), whose entries a
server such as HAPI processes one by one, and the chunks of a transaction cut in several
(`adapter.ehr.chunks`). Entries that refer to each other in a cycle (an Encounter and its
diagnosis Condition) cannot all come after each other: they form one group, placed after
every group its members refer to. The groups are the strongly connected components of the
reference graph (Tarjan's algorithm, without recursion so a long chain of references cannot
overflow the stack), found in time linear in the entries and their references (but for
sorting each entry's references, which keeps the order the same from one run to the next).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set


def dependency_groups(depends_on: Sequence[Set[int]]) -> list[list[int]]:
    """The groups of indexes in a cycle of references (a lone index is a group of one),
    each after the groups it depends on, in index order where the references leave a choice;
    the indexes of a group ascending. `depends_on[i]` holds the indexes `i` refers to (its
    own index, if there, is passed over)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    groups: list[list[int]] = []

    def visit(node: int) -> tuple[int, Iterator[int]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return node, iter(sorted(depends_on[node] - {node}))

    for root in range(len(depends_on)):
        if root in index:
            continue
        work = [visit(root)]
        while work:
            node, pending = work[-1]
            nxt = next(pending, None)
            if nxt is not None:
                if nxt not in index:
                    work.append(visit(nxt))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                groups.append(_pop_group(stack, on_stack, node))
    return groups


def dependency_order(depends_on: Sequence[Set[int]]) -> list[int]:
    """Every index once, each after those it depends on; a cycle's indexes together,
    ascending, after what any of them depends on outside the cycle."""
    return [i for group in dependency_groups(depends_on) for i in group]


def _pop_group(stack: list[int], on_stack: set[int], root: int) -> list[int]:
    group: list[int] = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        group.append(member)
        if member == root:
            return sorted(group)
