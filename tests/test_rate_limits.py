"""Requests and tokens per minute per endpoint (`rpm`, `tpm`), on a fake clock; and the
server's own `x-ratelimit-*` headers, obeyed by the OpenAI client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from _openai_server import OpenAIStubServer, Reply, openai_server
from autogen_core.models import LLMMessage, UserMessage

from journey.agents.backends import (
    ClientPool,
    FunctionChatCompletionClient,
    RateLimitedClient,
    RateWindow,
)
from journey.agents.backends._openai_rate_headers import ServerRateLimits, reset_seconds
from journey.agents.backends.openai_compat import OpenAICompatibleClient
from journey.agents.backends.spec import client_spec, create_client, parse_model_spec
from journey.errors import ConfigError, ModelSpecError

__all__ = ["openai_server"]  # the fixture, imported so pytest finds it

ASK = [UserMessage(content="one two three", source="user")]  # 3 prompt tokens


class FakeClock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let the others run, as a real sleep would


def window(clock: FakeClock, rpm: int | None = None, tpm: int | None = None) -> RateWindow:
    return RateWindow(rpm, tpm, clock=clock, sleep=clock.sleep)


async def test_rpm_spaces_requests_a_minute_apart_per_rpm_of_them() -> None:
    clock = FakeClock()
    starts: list[float] = []

    def answer(messages: Sequence[LLMMessage]) -> str:
        starts.append(clock.now)
        return "four five"

    client = RateLimitedClient(FunctionChatCompletionClient(answer), window(clock, rpm=2))
    await asyncio.gather(*(client.create(ASK) for _ in range(5)))
    assert starts == [0.0, 0.0, 60.0, 60.0, 120.0]
    assert (client.window.waits, client.window.waited) == (2, 120.0)
    # Any 60 s holds at most 2 starts.
    assert all(sum(t <= s < t + 60 for s in starts) <= 2 for t in starts)


async def test_the_window_slides_rather_than_resetting_each_minute() -> None:
    clock = FakeClock()
    limit = window(clock, rpm=2)
    await limit.acquire()  # t=0
    clock.now = 30.0
    await limit.acquire()  # t=30
    clock.now = 45.0
    await limit.acquire()  # waits for t=0 to leave: t=60
    assert clock.now == 60.0
    await limit.acquire()  # waits for t=30 to leave: t=90
    assert clock.now == 90.0 and clock.slept == [15.0, 30.0]


async def test_tpm_waits_until_the_minutes_tokens_fall_under_the_limit() -> None:
    clock = FakeClock()
    limit = window(clock, tpm=100)
    await limit.acquire()
    limit.answered(60)  # t=0
    clock.now = 10.0
    await limit.acquire()
    limit.answered(50)  # t=10: 110 tokens in the window, over 100
    clock.now = 20.0
    assert limit.delay() == 40.0  # at t=60 the first 60 leave, 50 remain
    await limit.acquire()
    assert clock.now == 60.0


async def test_tpm_counts_each_answers_prompt_and_completion_tokens() -> None:
    clock = FakeClock()
    starts: list[float] = []

    def answer(messages: Sequence[LLMMessage]) -> str:
        starts.append(clock.now)
        return "a b c d e f g"  # 7 completion tokens + 3 prompt = 10 per request

    client = RateLimitedClient(FunctionChatCompletionClient(answer), window(clock, tpm=20))
    for _ in range(4):
        await client.create(ASK)
    assert starts == [0.0, 0.0, 60.0, 60.0]


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="rpm must be at least 1, got 0"):
        RateWindow(rpm=0)
    with pytest.raises(ModelSpecError, match="rpm=0"):
        parse_model_spec("function:test_rate_limits:echo?rpm=0")
    with pytest.raises(ModelSpecError, match="tpm='many'"):
        parse_model_spec("openai:gpt-4o-mini?tpm=many")


def echo(messages: Sequence[LLMMessage]) -> str:
    return "ok"


def test_the_pool_gives_one_window_per_endpoint_shared_by_the_roles() -> None:
    pool = ClientPool()
    spec = "function:test_rate_limits:echo?rpm=3&tpm=1000"
    policy = pool.get(f"{spec}&price_in=1&price_out=2")  # another price: one endpoint still
    critic = pool.get(spec)
    assert isinstance(policy, RateLimitedClient) and policy is critic
    assert (policy.window.rpm, policy.window.tpm) == (3, 1000)
    plain = pool.get("function:test_rate_limits:echo")
    assert not isinstance(plain, RateLimitedClient) and policy.inner is plain  # one client
    # The client is built without the run's options: they are not its.
    parsed = parse_model_spec(f"{spec}&price_in=1&price_out=2")
    assert client_spec(parsed).options == {}
    # A client built alone (eval, pairs) gets a window of its own.
    alone = create_client(parsed)
    assert isinstance(alone, RateLimitedClient) and alone.window.rpm == 3
    assert isinstance(alone.inner, FunctionChatCompletionClient)


def test_reset_headers_read_as_seconds() -> None:
    assert reset_seconds("1s") == 1.0
    assert reset_seconds("6m0s") == 360.0
    assert reset_seconds("20ms") == pytest.approx(0.02)
    assert reset_seconds("1h2m3.5s") == 3723.5
    assert reset_seconds("30") == 30.0
    assert reset_seconds("soon") is None and reset_seconds(None) is None


def test_a_spent_count_pauses_until_its_reset() -> None:
    clock = FakeClock()
    limits = ServerRateLimits(clock=clock)
    limits.observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "9s"})
    assert limits.delay() == 0.0 and limits.remaining_requests == 5
    limits.observe({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"})
    assert limits.delay() == 60.0  # capped at MAX_WAIT
    clock.now = 50.0
    assert limits.delay() == 10.0 and limits.pauses == 1


async def test_the_openai_client_waits_for_the_reset_its_server_announced(
    openai_server: OpenAIStubServer,
) -> None:
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
    openai_server.enqueue(Reply(content="first", headers=spent), Reply.text("second"))
    client = OpenAICompatibleClient("stub", api_key="k", base_url=openai_server.base_url)
    try:
        started = time.monotonic()
        await client.create(ASK)
        assert client.server_limits.remaining_requests == 0
        second = await client.create(ASK)
        assert second.content == "second"
        # The pause began when the first answer came, after `started`: the second
        # request cannot have gone out sooner than 0.3 s after it.
        assert time.monotonic() - started >= 0.3
        assert client.server_limits.pauses == 1 and client.retry_count == 0
        assert client.server_limits.delay() == 0.0
    finally:
        await client.close()
