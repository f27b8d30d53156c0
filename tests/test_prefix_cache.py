"""The embedded worker's prefix cache: matching by token ids, superseding, the budget."""

from __future__ import annotations

import torch

from journey.engine._prefix_cache import PrefixCache, common_prefix_length


def _states(tokens: int, layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Float32 states of one head of width 4: 32 bytes per token per layer and tensor."""
    return [(torch.randn(1, 1, tokens, 4), torch.randn(1, 1, tokens, 4)) for _ in range(layers)]


def _ids(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def test_common_prefix_length() -> None:
    assert common_prefix_length(_ids(1, 2, 3), _ids(1, 2, 4)) == 2
    assert common_prefix_length(_ids(1, 2), _ids(1, 2, 3)) == 2
    assert common_prefix_length(_ids(5), _ids(1, 2)) == 0
    assert common_prefix_length(_ids(), _ids(1)) == 0


def test_longest_prefix_picks_the_best_entry_and_reports_its_length() -> None:
    cache = PrefixCache(budget_bytes=1 << 20)
    cache.store(_ids(1, 2, 3, 4), _states(4))
    cache.store(_ids(1, 2, 9), _states(3))
    entry, length = cache.longest_prefix(_ids(1, 2, 3, 7, 8))
    assert entry is not None and entry.tokens.tolist() == [1, 2, 3, 4] and length == 3
    entry, length = cache.longest_prefix(_ids(1, 2, 9, 9))
    assert entry is not None and entry.tokens.tolist() == [1, 2, 9] and length == 3
    assert cache.longest_prefix(_ids(8, 1, 2)) == (None, 0)


def test_a_prompt_that_extends_an_entry_replaces_it() -> None:
    cache = PrefixCache(budget_bytes=1 << 20)
    cache.store(_ids(1, 2), _states(2))
    cache.store(_ids(1, 2, 3, 4), _states(4))  # the next turn of the same session
    cache.store(_ids(1, 5), _states(2))  # another session sharing the system prompt: kept
    assert len(cache) == 2
    assert cache.nbytes == (4 + 2) * 2 * 2 * 16  # tokens x layers x (k, v) x 16 bytes


def test_a_full_cache_evicts_stale_entries_least_recently_used_first() -> None:
    per_entry = 3 * 2 * 2 * 16
    cache = PrefixCache(budget_bytes=2 * per_entry)
    cache.store(_ids(1, 1, 1), _states(3))
    cache.store(_ids(2, 2, 2), _states(3))
    cache.store(_ids(3, 3, 3), _states(3))  # both entries are fresh: not stored
    assert cache.rejections == 1 and cache.longest_prefix(_ids(3, 3, 3))[1] == 0
    for _ in range(5):  # only session 1 goes on: session 2's entry goes stale
        assert cache.longest_prefix(_ids(1, 1, 1, 5))[1] == 3
    cache.store(_ids(3, 3, 3), _states(3))
    assert cache.evictions == 1 and cache.nbytes == 2 * per_entry
    assert cache.longest_prefix(_ids(2, 2, 2))[1] == 0
    assert cache.longest_prefix(_ids(1, 1, 1))[1] == 3
    assert cache.longest_prefix(_ids(3, 3, 3))[1] == 3


def test_more_sessions_than_fit_keep_some_states_instead_of_evicting_in_turn() -> None:
    """Three sessions take turns, with room for two: plain LRU would make every lookup
    miss (each store evicting the entry the next session needs)."""
    cache = PrefixCache(budget_bytes=24 * 2 * 2 * 16)  # 24 tokens of 2-layer states
    prompts = {session: [session] * 10 for session in (1, 2, 3)}
    reused = dict.fromkeys(prompts, 0)
    for _ in range(6):
        for session, prompt in prompts.items():
            ids = torch.tensor(prompt)
            reused[session] += cache.longest_prefix(ids)[1]
            cache.store(ids, _states(len(prompt)))
            prompt.append(session)  # the next turn extends this prompt
    assert reused[1] > 0 and reused[2] > 0 and reused[3] == 0
    assert reused[1] >= 5 * 10  # every later turn found at least the first prompt


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    cache = PrefixCache(budget_bytes=100)
    cache.store(_ids(1, 2, 3), _states(3))
    assert len(cache) == 0 and cache.nbytes == 0
