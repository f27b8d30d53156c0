"""Seeds per request: derived from what is asked and which sample it is, never from the
order requests arrive in; kept across a resume that the cache answers in part."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import CreateResult, LLMMessage, UserMessage

from journey.agents.backends import ScriptedChatCompletionClient
from journey.agents.backends.reply_identity import reply_identity
from journey.agents.backends.role_endpoints import role_specs
from journey.agents.backends.seeded_client import SEED_BITS, SeededClient, seeded, seeds_requests
from journey.runs.request_accounts import RequestAccounts, SpendSettings

A = [UserMessage(content="What is 3 * 4?", source="user")]
B = [UserMessage(content="What is 5 * 4?", source="user")]


class SeedRecorder(ScriptedChatCompletionClient):
    """Answers "ok" to everything and records the seed of each request it is sent."""

    def __init__(self) -> None:
        super().__init__(["ok"] * 100)
        self.seeds: list[tuple[str, Any]] = []

    async def create(  # type: ignore[override]
        self,
        messages: Sequence[LLMMessage],
        *,
        extra_create_args: Mapping[str, Any] = {},
        **kwargs: Any,
    ) -> CreateResult:
        self.seeds.append((str(messages[-1].content), extra_create_args.get("seed")))
        return await super().create(messages, extra_create_args=extra_create_args, **kwargs)


async def _ask(client: SeededClient, *requests: list[UserMessage]) -> None:
    for messages in requests:
        await client.create(messages, extra_create_args={"temperature": 0.7})


async def test_identical_requests_get_different_seeds_that_a_rerun_repeats() -> None:
    first = SeedRecorder()
    await _ask(SeededClient(first, identity="m"), A, A, A, B)
    seeds = [seed for _, seed in first.seeds]
    assert len(set(seeds[:3])) == 3  # three samples of one question: three seeds
    assert all(isinstance(s, int) and 0 <= s < 2**SEED_BITS for s in seeds)

    # Another request in between, or first, changes no request's seed.
    rerun = SeedRecorder()
    await _ask(SeededClient(rerun, identity="m"), B, A, A, A)
    assert sorted(rerun.seeds) == sorted(first.seeds)
    assert [s for q, s in rerun.seeds if q == "What is 3 * 4?"] == seeds[:3]

    # Another model (or another spec seed, which its identity holds) samples anew.
    other = SeedRecorder()
    await _ask(SeededClient(other, identity="m?seed=1"), A)
    assert other.seeds[0][1] not in seeds


async def test_concurrent_requests_are_seeded_in_the_order_they_are_asked() -> None:
    inner = SeedRecorder()
    client = SeededClient(inner, identity="m")
    hot = {"temperature": 0.7}
    await asyncio.gather(
        *(client.create(A, extra_create_args=hot) for _ in range(3)),
        client.create(B, extra_create_args=hot),
    )
    again = SeedRecorder()
    await _ask(SeededClient(again, identity="m"), A, A, A, B)
    assert [s for q, s in inner.seeds if q == "What is 3 * 4?"] == [
        s for q, s in again.seeds if q == "What is 3 * 4?"
    ]


async def test_a_request_with_its_own_seed_keeps_it_and_streams_are_seeded() -> None:
    inner = SeedRecorder()
    client = SeededClient(inner, identity="m")
    await client.create(A, extra_create_args={"seed": 5})
    chunks = [chunk async for chunk in client.create_stream(A)]
    assert isinstance(chunks[-1], CreateResult)
    assert inner.seeds[0] == ("What is 3 * 4?", 5)
    assert isinstance(inner.seeds[1][1], int) and inner.seeds[1][1] != 5


@pytest.mark.parametrize(
    ("role", "seeded"),
    [
        ("embedded", True),  # samples from seed 0 when the spec gives none
        ("hf:/no/such/dir", True),
        ("openai:m@http://127.0.0.1:9", False),  # a server's own sampling, unless...
        ("openai:m@http://127.0.0.1:9?seed=3", True),  # ...the spec gives a seed
        ("openai:m@http://127.0.0.1:9?seed=3,openai:m@http://127.0.0.1:8", False),
        ("replay:one", False),  # takes no seed
    ],
)
def test_which_roles_are_seeded(role: str, seeded: bool) -> None:
    assert seeds_requests(role_specs(role)) is seeded


async def test_a_resumed_run_seeds_its_new_requests_as_an_unbroken_run(tmp_path: Path) -> None:
    """The seeds sit outside the cache: requests the cache answers still count as
    samples, so what the resumed run asks next gets the seed an unbroken run gives it."""

    async def run(root: Path, asks: Sequence[list[UserMessage]]) -> SeedRecorder:
        inner = SeedRecorder()
        accounts = RequestAccounts(SpendSettings(), {"policy": "embedded"}, root)
        client = accounts.wrap("policy", inner)
        assert isinstance(client, SeededClient)
        for messages in asks:
            await client.create(messages, extra_create_args={"temperature": 0.7})
        accounts.close()
        return inner

    unbroken = await run(tmp_path / "unbroken", [A, A, B, A])
    await run(tmp_path / "resumed", [A, A, B])
    resumed = await run(tmp_path / "resumed", [A, A, B, A])
    assert len(resumed.seeds) == 1  # the cache answered the first three
    assert resumed.seeds[0] == unbroken.seeds[3]
    assert resumed.seeds[0][1] not in {seed for _, seed in unbroken.seeds[:2]}


async def test_greedy_requests_get_no_seed_where_it_would_change_nothing() -> None:
    inner = SeedRecorder()
    client = SeededClient(inner, identity="m")
    await client.create(A, extra_create_args={"temperature": 0})
    await client.create(A, extra_create_args={"temperature": 0.0, "max_tokens": 5})
    await client.create(A)  # the spec's temperature: not greedy here
    assert [seed for _, seed in inner.seeds][:2] == [None, None]
    assert isinstance(inner.seeds[2][1], int)
    # A role whose spec decodes greedily: only a request that asks to sample is seeded.
    greedy = SeedRecorder()
    role = seeded(greedy, role_specs("embedded?temperature=0"))
    await role.create(A)
    await role.create(A, extra_create_args={"temperature": 0.7})
    assert greedy.seeds[0][1] is None and isinstance(greedy.seeds[1][1], int)


async def test_a_model_copied_in_place_samples_as_the_original(tmp_path: Path) -> None:
    """Seeds name the model without its weights' fingerprint (size and modification
    time), which the response cache keeps: a fresh copy on another node samples alike."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = role_specs(f"hf:{model}")
    before, cached_before = SeedRecorder(), reply_identity(spec[0])
    await seeded(before, spec).create(A)
    (model / "config.json").write_text("{} ")  # rewritten: another size and time
    after = SeedRecorder()
    await seeded(after, spec).create(A)
    assert after.seeds == before.seeds
    assert reply_identity(spec[0]) != cached_before  # the cache tells the copies apart
