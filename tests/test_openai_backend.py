"""The OpenAI-compatible backend against a stub server on loopback: real HTTP, no network."""

from __future__ import annotations

import logging
import math
import socket
import time
import warnings
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import pytest
from _openai_server import OpenAIStubServer, Reply, openai_server
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    ModelFamily,
    SystemMessage,
    UserMessage,
)

from journey.agents.backends.base import LabelScoringClient, can_score_labels
from journey.agents.backends.openai_compat import (
    LABEL_FLOOR_LOGPROB,
    OPENAI_DEFAULT_BASE_URL,
    OpenAICompatibleClient,
    openai_client_from_spec,
)
from journey.errors import ConfigError, ModelUnavailableError
from journey.protocols import LabelScoring

__all__ = ["openai_server"]  # the fixture, imported so pytest finds it

SECRET = "sk-test-PLANTED-SECRET"
MODEL = "stub-llama-1b"
CLOSED_URL = "http://127.0.0.1:9/v1"  # never asked: the client is only built
PROMPT = [SystemMessage(content="You are terse."), UserMessage(content="2+2?", source="user")]

ClientFactory = Callable[..., OpenAICompatibleClient]


@pytest.fixture
async def make_client(openai_server: OpenAIStubServer) -> AsyncIterator[ClientFactory]:
    """Clients for the stub server with a planted key and test-speed backoff; closed afterwards."""
    clients: list[OpenAICompatibleClient] = []

    def make(**overrides: Any) -> OpenAICompatibleClient:
        settings: dict[str, Any] = {
            "api_key": SECRET,
            "base_url": openai_server.base_url,
            "timeout": 5.0,
            "max_retries": 3,
            "backoff_base": 0.01,
            "max_backoff": 0.05,
            **overrides,
        }
        client = OpenAICompatibleClient(MODEL, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_one_line_without_secret(error: BaseException, *must_contain: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert SECRET not in message and SECRET not in repr(error)
    for text in must_contain:
        assert text in message


async def test_plain_completion(make_client: ClientFactory, openai_server: OpenAIStubServer):
    openai_server.enqueue(Reply.text("four", prompt_tokens=11, completion_tokens=2))
    client = make_client(temperature=0.3)

    result = await client.create(PROMPT)

    assert result.content == "four"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 2)
    assert client.total_usage().prompt_tokens == 11
    assert client.retry_count == 0
    [request] = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == MODEL
    assert request.body["temperature"] == 0.3
    assert [(m["role"], m["content"]) for m in request.body["messages"]] == [
        ("system", "You are terse."),
        ("user", "2+2?"),
    ]
    assert request.headers["authorization"] == f"Bearer {SECRET}"


async def test_messages_travel_beside_the_other_arguments(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    # The messages go in the SDK's extra body (skipping its per-message type walk); the
    # server must still see one ordinary request with every argument in place.
    openai_server.enqueue(Reply.text("ok"), Reply.text("ok"))
    client = make_client(extra_body={"top_k": 5})

    await client.create(PROMPT, extra_create_args={"max_tokens": 9, "stop": ["\n\n"]})
    await client.create(PROMPT, extra_create_args={"extra_body": {"top_k": 2}})

    first, second = (request.body for request in openai_server.requests)
    assert (first["model"], first["max_tokens"], first["stop"], first["top_k"]) == (
        MODEL,
        9,
        ["\n\n"],
        5,
    )
    assert [m["content"] for m in first["messages"]] == ["You are terse.", "2+2?"]
    assert second["top_k"] == 2 and second["messages"] == first["messages"]


async def test_is_an_autogen_client_without_the_key_in_repr(make_client: ClientFactory):
    client = make_client()
    assert isinstance(client, ChatCompletionClient)
    assert client.model_info["family"] == ModelFamily.UNKNOWN
    assert client.model_info["function_calling"] is False
    assert SECRET not in repr(client) and MODEL in repr(client)
    assert not can_score_labels(client)


async def test_empty_content_is_returned_as_is(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.empty())
    client = make_client()
    result = await client.create(PROMPT)
    assert result.content == ""
    assert client.retry_count == 0


async def test_429_with_retry_after_zero_is_retried(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.error(429, retry_after="0"), Reply.text("done"))
    client = make_client(backoff_base=5.0, max_backoff=5.0)  # only Retry-After keeps it fast

    started = time.monotonic()
    result = await client.create(PROMPT)

    assert result.content == "done"
    assert time.monotonic() - started < 2.0
    assert client.retry_count == 1
    assert client.retries_by_cause == {"429": 1}
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("statuses", [(500,), (503,), (502, 504), (408, 409), (500, 503, 529)])
async def test_server_errors_are_retried(make_client: ClientFactory, openai_server, statuses):
    openai_server.enqueue(*(Reply.error(s) for s in statuses), Reply.text("recovered"))
    client = make_client()

    result = await client.create(PROMPT)

    assert result.content == "recovered"
    assert client.retry_count == len(statuses)
    assert sum(client.retries_by_cause.values()) == len(statuses)
    assert set(client.retries_by_cause) == {str(s) for s in statuses}


async def test_retry_after_seconds_is_honoured(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.error(503, retry_after="1"), Reply.text("ok"))
    client = make_client(max_backoff=5.0)

    started = time.monotonic()
    await client.create(PROMPT)

    assert 0.9 <= time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    ("header", "value"),
    [("retry_after_ms", "200"), ("retry_after", formatdate(time.time() - 60, usegmt=True))],
    ids=["retry-after-ms", "http-date-in-the-past"],
)
async def test_retry_after_ms_and_http_date(make_client, openai_server, header, value):
    openai_server.enqueue(Reply.error(429, **{header: value}), Reply.text("ok"))
    # Backoff alone would wait 5 s: finishing sooner shows the header was used.
    client = make_client(backoff_base=5.0, max_backoff=5.0)

    started = time.monotonic()
    await client.create(PROMPT)

    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    if header == "retry_after_ms":
        assert elapsed >= 0.18


async def test_retry_after_is_capped_by_max_backoff(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.error(429, retry_after="120"), Reply.text("ok"))
    client = make_client(max_backoff=0.1)

    started = time.monotonic()
    await client.create(PROMPT)

    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_4xx_are_not_retried(make_client: ClientFactory, openai_server, status):
    openai_server.enqueue(Reply.error(status, message=f"bad key {SECRET}\nsecond line"))
    client = make_client()

    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(PROMPT)

    assert len(openai_server.requests) == 1
    assert client.retry_count == 0
    _assert_one_line_without_secret(caught.value, f"HTTP {status}", openai_server.base_url, MODEL)


async def test_timeouts_are_retried_then_reported_without_the_key(
    openai_server: OpenAIStubServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    # The timeout leaves room for a loaded machine to connect (a connect that times out
    # never reaches the server); the replies are far slower than it.
    openai_server.enqueue(Reply.slow(6.0), Reply.slow(6.0))
    client = openai_client_from_spec(
        MODEL, openai_server.base_url, timeout=1.0, max_retries=1, backoff_base=0.01
    )
    caplog.set_level(logging.DEBUG)

    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(PROMPT)
    await client.close()

    assert time.monotonic() - started < 6.0
    assert len(openai_server.requests) == 2
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert client.retry_count == 1 and client.retries_by_cause == {"timeout": 1}
    _assert_one_line_without_secret(caught.value, openai_server.base_url, "timed out", "2 attempts")
    assert SECRET not in repr(client)
    assert SECRET not in caplog.text


async def test_connection_refused_gives_up_after_retries(make_client: ClientFactory):
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = make_client(base_url=base_url, max_retries=2)

    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(PROMPT)

    assert client.retries_by_cause == {"connection": 2}
    _assert_one_line_without_secret(caught.value, base_url, "connection failed", "3 attempts")


async def test_truncated_json_is_retried(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.truncated(), Reply.text("whole"))
    client = make_client()

    result = await client.create(PROMPT)

    assert result.content == "whole"
    assert client.retries_by_cause == {"invalid_response": 1}


async def test_truncated_json_every_time_is_unavailable(make_client: ClientFactory, openai_server):
    openai_server.enqueue(*(Reply.truncated() for _ in range(3)))
    client = make_client(max_retries=2)

    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(PROMPT)

    _assert_one_line_without_secret(caught.value, "unreadable response body")


async def test_streaming(make_client: ClientFactory, openai_server: OpenAIStubServer):
    openai_server.enqueue(Reply.error(503), Reply.text("one two three"))
    client = make_client()

    chunks = [chunk async for chunk in client.create_stream(PROMPT, include_usage=True)]

    *texts, final = chunks
    assert texts == ["one", " two", " three"]
    assert isinstance(final, CreateResult)
    assert final.content == "one two three"
    assert final.usage.prompt_tokens == 7
    assert client.retries_by_cause == {"503": 1}
    assert openai_server.requests[-1].body["stream"] is True


async def test_streaming_gives_up_with_model_unavailable(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.error(500), Reply.error(500))
    client = make_client(max_retries=1)

    with pytest.raises(ModelUnavailableError, match="HTTP 500"):
        async for _ in client.create_stream(PROMPT):
            pass


TOP = [("continue", -0.1), (" back", -2.5), ("Con", -3.0), ("\n", -4.0), ("ref", -6.0)]
LABELS = ["continue", "backtrack", "conclude", "refine", "finish"]


async def test_score_labels(make_client: ClientFactory, openai_server: OpenAIStubServer):
    openai_server.enqueue(Reply.logprobs(TOP))
    client = make_client(logprobs=True)
    assert isinstance(client, LabelScoringClient) and can_score_labels(client)
    assert client.label_scoring is LabelScoring.FIRST_TOKEN  # one token's top log-probs

    scores = await client.score_labels(PROMPT, LABELS)

    assert scores["continue"] == pytest.approx(math.log(math.exp(-0.1) + math.exp(-3.0)))
    assert scores["backtrack"] == pytest.approx(-2.5)
    assert scores["conclude"] == pytest.approx(-3.0)  # shares the first token "con"
    assert scores["refine"] == pytest.approx(-6.0)
    assert scores["finish"] == LABEL_FLOOR_LOGPROB
    body = openai_server.requests[0].body
    assert (body["logprobs"], body["top_logprobs"], body["max_tokens"]) == (True, 20, 1)
    assert body["model"] == MODEL
    assert client.total_usage().completion_tokens == 1


async def test_score_labels_continues_an_assistant_prefix(make_client, openai_server):
    openai_server.enqueue(Reply.logprobs(TOP))
    client = make_client(logprobs=True, continue_final_message=True)

    await client.score_labels(PROMPT, LABELS, prefix="ACTION: ")

    body = openai_server.requests[0].body
    assert body["messages"][-1] == {"role": "assistant", "content": "ACTION: "}
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False


async def test_score_labels_without_continuation_asks_in_the_user_turn(make_client, openai_server):
    openai_server.enqueue(Reply.logprobs(TOP))
    client = make_client(logprobs=True)
    history = [
        *PROMPT,
        AssistantMessage(content="4", source="a"),
        UserMessage(content="Judge.", source="u"),
    ]

    await client.score_labels(history, LABELS, prefix="ACTION: ")

    body = openai_server.requests[0].body
    last = body["messages"][-1]
    assert last["role"] == "user" and last["content"].startswith("Judge.")
    assert "continue, backtrack, conclude, refine, finish" in last["content"]
    assert "continue_final_message" not in body


async def test_score_labels_is_retried(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.error(429, retry_after="0"), Reply.logprobs(TOP))
    client = make_client(logprobs=True)

    scores = await client.score_labels(PROMPT, ["backtrack"])

    assert scores == {"backtrack": pytest.approx(-2.5)}
    assert client.retry_count == 1


async def test_score_labels_needs_logprobs(make_client: ClientFactory, openai_server):
    with pytest.raises(ConfigError, match="logprobs=True"):
        await make_client().score_labels(PROMPT, LABELS)

    openai_server.enqueue(Reply.text("continue"))  # a server that ignores logprobs
    with pytest.raises(ModelUnavailableError, match="no logprobs"):
        await make_client(logprobs=True).score_labels(PROMPT, LABELS)


def test_spec_base_url_and_key_resolution(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    with pytest.raises(ModelUnavailableError, match=r"\$OPENAI_API_KEY"):
        openai_client_from_spec("gpt-4o-mini", None)

    monkeypatch.setenv("MY_KEY", SECRET)
    client = openai_client_from_spec("gpt-4o-mini", None, api_key_env="MY_KEY")
    assert client.base_url == OPENAI_DEFAULT_BASE_URL
    assert client.model_info["family"] != ModelFamily.UNKNOWN  # AutoGen knows this one

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert openai_client_from_spec(MODEL, None).base_url == "http://127.0.0.1:9/v1"
    assert openai_client_from_spec(MODEL, "http://localhost:8000/v1/").base_url == (
        "http://localhost:8000/v1"
    )


async def test_spec_sends_a_dummy_key_to_local_servers(
    openai_server: OpenAIStubServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = openai_client_from_spec(MODEL, openai_server.base_url, max_tokens=16)

    await client.create(PROMPT)
    await client.close()

    request = openai_server.requests[0]
    assert request.headers["authorization"] == "Bearer EMPTY"
    assert request.body["max_tokens"] == 16


@pytest.mark.parametrize(
    ("settings", "quoted"),
    [({"timeout": 0}, "0"), ({"max_retries": -1}, "-1"), ({"temprature": 0.5}, "temprature")],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], quoted: str):
    with pytest.raises(ConfigError, match=quoted):
        OpenAICompatibleClient(MODEL, api_key="EMPTY", base_url="http://127.0.0.1:9/v1", **settings)


# --- token counts: the server's, never a tokenizer's ---------------------------------------


@pytest.fixture
def no_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken downloads its encodings on first use: where there is no internet, it fails."""
    import tiktoken

    def offline(*args: object, **kwargs: object) -> None:
        raise AssertionError("tiktoken would download its encoding")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    monkeypatch.setattr(tiktoken, "encoding_for_model", offline)


@pytest.mark.usefixtures("no_tiktoken")
async def test_count_tokens_is_the_servers_count_or_a_local_estimate(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    client = make_client(logprobs=True)
    estimate = client.count_tokens(PROMPT)  # nothing sent yet: estimated locally
    assert estimate == (len("You are terse.") + len("2+2?") + 3) // 4 + 2 * 4

    openai_server.enqueue(Reply.text("4", prompt_tokens=23))
    await client.create(PROMPT)
    assert client.count_tokens(PROMPT) == 23

    other = [UserMessage(content="Judge step 1.", source="user")]
    openai_server.enqueue(Reply(content="continue", top_logprobs=TOP, prompt_tokens=41))
    await client.score_labels(other, LABELS, prefix="ACTION: ")
    assert client.count_tokens(other) == 41
    assert client.count_tokens(PROMPT) == 23


@pytest.mark.usefixtures("no_tiktoken")
async def test_critic_scores_labels_with_the_servers_token_count(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    # `journey debate --critic "openai:M@URL?logprobs=true"` ended its first critic turn in
    # model_error: the critic counts its scoring prompt, and the count went to tiktoken.
    from journey.agents import CriticAgent, StepUnderReview

    openai_server.enqueue(
        Reply(content="continue", top_logprobs=TOP, prompt_tokens=57, completion_tokens=1),
        Reply.text("The sum is right.", prompt_tokens=70, completion_tokens=5),
    )
    critic = CriticAgent(make_client(logprobs=True), mode="score")
    review = StepUnderReview(problem="2+2?", previous_steps=[], step_number=1, text="2+2 = 4")

    turn = await critic.judge(review)

    assert turn.action.action == "continue"
    assert turn.usage.prompt_tokens == 57 + 70
    assert turn.reason == "The sum is right."


# --- what the server calls its model -------------------------------------------------------


async def test_a_model_the_server_names_otherwise_warns_nothing(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    # llama.cpp reports its GGUF file's name whatever model was asked for; AutoGen used
    # to warn "Resolved model mismatch" on every reply, into the live view.
    openai_server.enqueue(Reply.text("4", model="/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    client = make_client()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await client.create(PROMPT)

    assert result.content == "4"
    assert [str(w.message) for w in caught] == []


# --- reasoning models' thoughts, as vLLM sends them ----------------------------------------

THOUGHTS = "think it over: two and two make four, and nothing here is a trick"


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_thoughts_come_in_thought_and_the_answer_alone_in_content(
    make_client: ClientFactory, openai_server: OpenAIStubServer, field: str
):
    openai_server.enqueue(Reply.thinking(THOUGHTS, "4", field=field))

    result = await make_client().create(PROMPT)

    assert result.thought == THOUGHTS
    assert result.content == "4"
    assert result.usage.completion_tokens == 12


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_streamed_thoughts_come_whole_in_the_final_result(
    make_client: ClientFactory, openai_server: OpenAIStubServer, field: str
):
    # AutoGen streams reasoning_content as <think>-tagged text and strips the tags with
    # str.lstrip, which also eats the thoughts' first letters ("think it over" lost "think").
    openai_server.enqueue(Reply.thinking(THOUGHTS, "the answer is 4", field=field))

    chunks = [chunk async for chunk in make_client().create_stream(PROMPT, include_usage=True)]

    *texts, final = chunks
    assert texts == ["the", " answer", " is", " 4"]
    assert isinstance(final, CreateResult)
    assert final.thought == THOUGHTS
    assert final.content == "the answer is 4"
    assert final.usage.prompt_tokens == 7


async def test_a_reply_without_thoughts_has_none(make_client: ClientFactory, openai_server):
    openai_server.enqueue(Reply.text("4"), Reply.text("4"))  # vLLM sends "reasoning": null
    client = make_client()

    assert (await client.create(PROMPT)).thought is None
    *_, final = [chunk async for chunk in client.create_stream(PROMPT)]
    assert isinstance(final, CreateResult) and final.thought is None


# --- OpenAI's reasoning models -------------------------------------------------------------

REFUSED = ("max_tokens", "temperature", "top_p", "stop", "logprobs", "top_logprobs")


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("o3-mini", {}),
        ("o1", {}),
        ("gpt-5-mini", {}),
        ("openai/o4-mini", {}),
        ("my-thinker", {"reasoning": True}),
    ],
)
async def test_reasoning_models_get_max_completion_tokens_and_no_sampling(
    make_client: ClientFactory, openai_server: OpenAIStubServer, model: str, options: dict
):
    openai_server.enqueue(Reply.thinking("...", "4"), Reply.text("4"))
    client = OpenAICompatibleClient(
        model,
        api_key=SECRET,
        base_url=openai_server.base_url,
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        seed=3,
        **options,
    )

    await client.create(PROMPT)
    call_args = {"max_tokens": 9, "stop": ["\n"], "temperature": 0.5, "logprobs": True}
    async for _ in client.create_stream(PROMPT, extra_create_args=call_args):
        pass
    await client.close()

    first, second = (request.body for request in openai_server.requests)
    assert first["max_completion_tokens"] == 64 and first["seed"] == 3
    assert second["max_completion_tokens"] == 9 and second["stream"] is True
    for body in (first, second):
        assert body["model"] == model
        assert not set(REFUSED) & set(body), body


@pytest.mark.parametrize(
    ("model", "options"),
    [("gpt-4o-mini", {}), ("gpt-5-chat-latest", {}), ("o3-mini", {"reasoning": False})],
)
async def test_other_models_keep_max_tokens_and_sampling(
    openai_server: OpenAIStubServer, model: str, options: dict
):
    client = OpenAICompatibleClient(
        model, api_key=SECRET, base_url=openai_server.base_url, temperature=0.2, **options
    )

    await client.create(PROMPT, extra_create_args={"max_tokens": 9, "stop": ["\n"]})
    await client.close()

    body = openai_server.requests[0].body
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (9, 0.2, ["\n"])
    assert "max_completion_tokens" not in body


def test_reasoning_models_cannot_score_labels():
    with pytest.raises(ConfigError, match="reasoning model"):
        OpenAICompatibleClient(
            "o3", api_key=SECRET, base_url="http://127.0.0.1:9/v1", logprobs=True
        )


# --- base models through /v1/completions ---------------------------------------------------

DIALOGUE = [
    SystemMessage(content="Solve the problem one step at a time."),
    UserMessage(content="Problem: What is {2+2}?\n\nWrite Step 1.", source="user"),
    AssistantMessage(content="Step 1: 2+2 = 4.", source="policy"),
    UserMessage(content="The critic agrees with step 1. Write Step 2.", source="user"),
]
PLAIN = (
    "Solve the problem one step at a time.\n\n"
    "Problem: What is {2+2}?\n\nWrite Step 1.\n\n"
    "Step 1: 2+2 = 4.\n\n"
    "The critic agrees with step 1. Write Step 2.\n\n"
)


async def test_completions_api_sends_the_chat_as_plain_text(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    openai_server.enqueue(
        Reply.text("Step 2: So the answer is 4.", prompt_tokens=40, completion_tokens=9)
    )
    client = make_client(api="completions", temperature=0.0)

    result = await client.create(DIALOGUE, extra_create_args={"max_tokens": 24, "stop": ["Step 3"]})

    assert result.content == "Step 2: So the answer is 4."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (40, 9)
    assert result.finish_reason == "stop" and result.thought is None
    assert client.total_usage().completion_tokens == 9
    assert client.count_tokens(DIALOGUE) == 40
    [request] = openai_server.requests
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == PLAIN
    assert request.body["model"] == MODEL
    assert (request.body["max_tokens"], request.body["temperature"]) == (24, 0.0)
    assert request.body["stop"] == ["Step 3", "\n\n"]


async def test_completions_api_streams_one_chunk_and_is_retried(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    openai_server.enqueue(Reply.error(503), Reply.text("Step 2: 4.", finish_reason="length"))
    client = make_client(api="completions")

    chunks = [chunk async for chunk in client.create_stream(DIALOGUE)]

    assert chunks[0] == "Step 2: 4."
    assert isinstance(chunks[1], CreateResult) and chunks[1].finish_reason == "length"
    assert client.retries_by_cause == {"503": 1}


async def test_completions_api_scores_labels_after_the_forced_prefix(
    make_client: ClientFactory, openai_server: OpenAIStubServer
):
    openai_server.enqueue(Reply.logprobs(TOP))
    client = make_client(api="completions", logprobs=True)

    scores = await client.score_labels(DIALOGUE, LABELS, prefix="ACTION: ")

    assert scores["backtrack"] == pytest.approx(-2.5)
    assert scores["finish"] == LABEL_FLOOR_LOGPROB
    body = openai_server.requests[0].body
    assert body["prompt"] == PLAIN + "ACTION: "
    assert (body["max_tokens"], body["logprobs"]) == (1, 20)


async def test_completions_api_refuses_chat_only_arguments(make_client: ClientFactory):
    client = make_client(api="completions")
    with pytest.raises(ConfigError, match="response_format"):
        await client.create(DIALOGUE, extra_create_args={"response_format": {"type": "text"}})


def test_plain_prompt_leaves_a_final_assistant_message_open():
    from journey.engine.plain_prompt import load_plain_template

    template = load_plain_template()
    prefix = AssistantMessage(content="Step 2:", source="policy")

    assert template.render(DIALOGUE) == PLAIN
    assert template.render([*DIALOGUE, prefix]) == PLAIN + "Step 2:"
    assert template.stop == ("\n\n",)


def test_unknown_api_is_a_config_error():
    with pytest.raises(ConfigError, match="'responses'"):
        OpenAICompatibleClient(
            MODEL, api_key=SECRET, base_url="http://127.0.0.1:9/v1", api="responses"
        )
