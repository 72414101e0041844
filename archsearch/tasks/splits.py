"""Splitting a task's records: search (the study), select (re-scored through Thresholdout) and
final (touched once, at export)."""

from __future__ import annotations


def three_way(ids: list[str], first_search: int, first_test: int, search: int, select: int) -> dict[str, str]:
    """Grow a two-way split (its first ``first_search`` ids were search, the next ``first_test``
    test) into three: the old search ids stay in search, the old test ids go half to select and half
    to final, and the remaining ids fill search up to ``search`` and select up to ``select``; the
    rest is final. Growing, not reshuffling, keeps what earlier studies measured comparable."""
    old_search, old_test = ids[:first_search], ids[first_search:first_search + first_test]
    rest = ids[first_search + first_test:]
    half = len(old_test) // 2
    more, extra_select = search - len(old_search), select - half
    out = {i: "search" for i in old_search + rest[:more]}
    out |= {i: "select" for i in old_test[:half] + rest[more:more + extra_select]}
    out |= {i: "final" for i in old_test[half:] + rest[more + extra_select:]}
    return out
