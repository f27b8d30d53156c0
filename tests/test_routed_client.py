"""Several endpoints per role: least-loaded routing, fail-over, probes, request faults."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest
from autogen_core.models import LLMMessage, UserMessage

from journey.agents.backends import FunctionChatCompletionClient
from journey.agents.backends.routed import Endpoint, RoutedClient, is_request_fault
from journey.errors import ModelUnavailableError

ASK = [UserMessage(content="What is 3 * 4?", source="user")]
SERVED: Counter[str] = Counter()


def endpoint(name: str, *, delay: float = 0.0, fail: bool = False, limit: int | None = None):
    async def reply(_: Sequence[LLMMessage]) -> str:
        await asyncio.sleep(delay)
        if fail:
            raise ModelUnavailableError(f"{name} is down")
        SERVED[name] += 1
        return f"12 from {name}"

    return Endpoint(name, FunctionChatCompletionClient(reply), limit=limit)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def ask_many(client: RoutedClient, n: int) -> list[str]:
    results = await asyncio.gather(*(client.create(ASK) for _ in range(n)))
    return [str(r.content) for r in results]


async def test_requests_spread_over_endpoints_by_load_and_limit() -> None:
    SERVED.clear()
    client = RoutedClient([endpoint("a", delay=0.01), endpoint("b", delay=0.01)])
    replies = await ask_many(client, 10)
    assert len(replies) == 10 and Counter({"a": 5, "b": 5}) == SERVED

    SERVED.clear()
    limited = RoutedClient(
        [endpoint("small", delay=0.02, limit=1), endpoint("big", delay=0.02, limit=3)]
    )
    await ask_many(limited, 8)
    assert Counter({"small": 2, "big": 6}) == SERVED  # one slot against three
    assert max(e.in_flight for e in limited.endpoints) == 0


async def test_a_dead_endpoint_is_taken_out_and_the_requests_finish_on_the_others() -> None:
    SERVED.clear()
    client = RoutedClient([endpoint("dead", fail=True), endpoint("alive", delay=0.005)])
    replies = await ask_many(client, 6)
    assert all(r == "12 from alive" for r in replies) and SERVED["alive"] == 6
    dead, alive = client.stats()
    # Requests sent before it was taken out fail over; no later one is sent to it.
    assert not dead.healthy and dead.failures == dead.requests >= 1
    assert "dead is down" in (dead.last_error or "") and alive.healthy


async def test_a_failed_endpoint_is_probed_and_comes_back() -> None:
    clock = Clock()
    state = {"down": True}

    async def flaky(_: Sequence[LLMMessage]) -> str:
        if state["down"]:
            raise ModelUnavailableError("flaky is down")
        return "12 from flaky"

    client = RoutedClient(
        [Endpoint("flaky", FunctionChatCompletionClient(flaky)), endpoint("steady")],
        probe_after=10.0,
        clock=clock,
    )
    assert (await client.create(ASK)).content == "12 from steady"  # failed over
    first = client.stats()[0]
    assert not first.healthy and first.requests == first.failures == 1
    clock.now = 9.0
    assert (await client.create(ASK)).content == "12 from steady"  # no probe before 10 s
    assert client.stats()[0].requests == 1
    clock.now = 11.0
    state["down"] = False
    assert (await client.create(ASK)).content == "12 from flaky"  # the probe
    assert client.stats()[0].healthy


async def test_a_request_fault_is_raised_at_once_and_takes_no_endpoint_out() -> None:
    class BadRequest(Exception):
        status_code = 400

    async def refuse(_: Sequence[LLMMessage]) -> str:
        raise ModelUnavailableError("HTTP 400 (prompt too long)") from BadRequest()

    assert is_request_fault(ModelUnavailableError("x").with_traceback(None)) is False
    client = RoutedClient(
        [Endpoint("a", FunctionChatCompletionClient(refuse)), endpoint("b", fail=True)]
    )
    with pytest.raises(ModelUnavailableError, match="prompt too long"):
        await client.create(ASK)
    assert client.stats()[0].healthy and client.stats()[1].requests == 0


async def test_when_every_endpoint_is_out_the_request_fails_with_each_fault() -> None:
    client = RoutedClient([endpoint("a", fail=True), endpoint("b", fail=True)])
    with pytest.raises(ModelUnavailableError, match=r"all 2 endpoints failed \(a: .*a is down"):
        await client.create(ASK)
    with pytest.raises(ModelUnavailableError, match="all 2 endpoints failed"):
        await client.create(ASK)  # no probe is due: fails at once
