"""Counts per role (tokens spent, cache hits and misses), as runs record them in
`spend.json` and `cache.json`, and the two sums a merge of several sources needs: what a
source added since it was last merged, and a running total."""

from __future__ import annotations

__all__ = ["Counts", "add_counts", "counts_since"]

Counts = dict[str, dict[str, int]]
"""Role -> counter name -> value."""


def counts_since(now: Counts, before: Counts) -> Counts:
    """What `now` grew by since `before`; all of `now` when a count went down or a role
    is gone (the source was made again), or when nothing was recorded before."""
    grown = {
        role: {name: value - before.get(role, {}).get(name, 0) for name, value in counts.items()}
        for role, counts in now.items()
    }
    shrunk = any(v < 0 for counts in grown.values() for v in counts.values())
    return now if shrunk or set(before) - set(now) else grown


def add_counts(total: Counts, more: Counts) -> None:
    """Add `more` into `total`, role by role and counter by counter."""
    for role, counts in more.items():
        into = total.setdefault(role, {})
        for name, value in counts.items():
            into[name] = into.get(name, 0) + value
