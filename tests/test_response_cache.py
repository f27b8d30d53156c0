"""The response cache: same questions, same answers, no model call; samples kept apart."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import CreateResult, LLMMessage, UserMessage

from journey.agents.backends import FunctionChatCompletionClient, ScriptedChatCompletionClient
from journey.agents.backends.cached_client import CachedClient, CacheMode
from journey.agents.backends.reply_identity import reply_identity
from journey.agents.backends.response_store import (
    CachedResponse,
    ResponseStore,
    merge_stores,
    request_key,
)
from journey.agents.backends.spec import parse_model_spec
from journey.errors import ConfigError

ASK = [UserMessage(content="What is 3 * 4?", source="user")]
OTHER = [UserMessage(content="What is 5 * 4?", source="user")]


def refusing() -> FunctionChatCompletionClient:
    """A model that must not be asked: every request fails the test."""

    def fail(_: Sequence[LLMMessage]) -> str:
        raise AssertionError("the model was asked although the cache had the answer")

    return FunctionChatCompletionClient(fail)


async def replies(client: CachedClient, messages: Sequence[LLMMessage], n: int) -> list[str]:
    out = []
    for _ in range(n):
        result = await client.create(messages)
        assert isinstance(result.content, str)
        out.append(result.content)
    return out


async def test_a_warm_cache_answers_the_same_requests_in_order_without_the_model(
    tmp_path: Path,
) -> None:
    store = ResponseStore(tmp_path)
    cold = CachedClient(
        ScriptedChatCompletionClient(["twelve", "12", "it is 12", "twenty"]),
        store,
        identity="replay:a",
    )
    # Three identical requests are three samples (a beam's children), not one answer.
    first = await replies(cold, ASK, 3) + await replies(cold, OTHER, 1)
    assert first == ["twelve", "12", "it is 12", "twenty"]
    assert cold.stats.misses == 4 and cold.stats.stored == 4 and cold.stats.hits == 0
    store.close()

    warm_store = ResponseStore(tmp_path)
    warm = CachedClient(refusing(), warm_store, identity="replay:a")
    again = await replies(warm, ASK, 3) + await replies(warm, OTHER, 1)
    assert again == first
    assert warm.stats.hits == 4 and warm.stats.misses == 0 and warm.stats.stored == 0
    assert warm.stats.completion_tokens_saved > 0 and warm.stats.prompt_tokens_saved > 0
    result = await CachedClient(
        refusing(), warm_store, identity="replay:a", mode=CacheMode.READ
    ).create(ASK)
    assert result.cached is True and result.usage.completion_tokens > 0


async def test_another_model_or_another_setting_is_another_key(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    await CachedClient(ScriptedChatCompletionClient(["a"]), store, identity="m1").create(ASK)
    other_model = CachedClient(ScriptedChatCompletionClient(["b"]), store, identity="m2")
    assert (await other_model.create(ASK)).content == "b"
    hotter = CachedClient(ScriptedChatCompletionClient(["c"]), store, identity="m1")
    result = await hotter.create(ASK, extra_create_args={"temperature": 0.9})
    assert result.content == "c" and hotter.stats.misses == 1


async def test_cut_off_replies_and_errors_are_not_stored(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    long = "one two three four five six"
    client = CachedClient(ScriptedChatCompletionClient([long, long]), store, identity="m")
    cut = await client.create(ASK, extra_create_args={"max_tokens": 2})
    assert cut.finish_reason == "length" and client.stats.stored == 0 and len(store) == 0
    keeping = CachedClient(
        ScriptedChatCompletionClient([long]), store, identity="m", store_truncated=True
    )
    await keeping.create(ASK, extra_create_args={"max_tokens": 2})
    assert keeping.stats.stored == 1 and len(store) == 1

    failing = CachedClient(refusing(), store, identity="n")
    with pytest.raises(AssertionError):
        await failing.create(ASK)
    assert len(store) == 1 and failing.stats.stored == 0


async def test_modes_read_and_write(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    writer = CachedClient(
        ScriptedChatCompletionClient(["a", "b"]), store, identity="m", mode=CacheMode.WRITE
    )
    await writer.create(ASK)
    # Write-only never reads: the same first sample is asked again (and kept as it was).
    writer_again = CachedClient(
        ScriptedChatCompletionClient(["fresh"]), store, identity="m", mode=CacheMode.WRITE
    )
    assert (await writer_again.create(ASK)).content == "fresh"
    reader = CachedClient(refusing(), store, identity="m", mode=CacheMode.READ)
    assert (await reader.create(ASK)).content == "a"  # the first answer stored stays
    reader_miss = CachedClient(
        ScriptedChatCompletionClient(["new"]), store, identity="m", mode=CacheMode.READ
    )
    await reader_miss.create(OTHER)
    assert reader_miss.stats.misses == 1 and reader_miss.stats.stored == 0 and len(store) == 1
    with pytest.raises(ConfigError, match="cache mode must be one of off, read, write"):
        CacheMode.parse("sometimes")
    with pytest.raises(ConfigError):
        CachedClient(refusing(), store, identity="m", mode=CacheMode.OFF)


async def test_streams_and_label_scores_are_cached(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)

    def scores(_: Sequence[LLMMessage], labels: Sequence[str]) -> dict[str, float]:
        return {label: -float(i) for i, label in enumerate(labels)}

    cold = CachedClient(
        ScriptedChatCompletionClient(["Step 1: 12"], label_scores=scores), store, identity="m"
    )
    chunks = [chunk async for chunk in cold.create_stream(ASK)]
    assert isinstance(chunks[-1], CreateResult) and chunks[-1].content == "Step 1: 12"
    scored = await cold.score_labels(ASK, ["continue", "reflect"], prefix="ACTION: ")
    assert scored == {"continue": 0.0, "reflect": -1.0}

    warm = CachedClient(refusing(), store, identity="m")
    warm_chunks = [chunk async for chunk in warm.create_stream(ASK)]
    assert warm_chunks[0] == "Step 1: 12"
    last = warm_chunks[-1]
    assert isinstance(last, CreateResult) and last.cached and last.content == "Step 1: 12"
    # The refusing client cannot score labels: the answer can only come from the cache.
    assert await warm.score_labels(ASK, ["continue", "reflect"], prefix="ACTION: ") == scored
    assert warm.stats.hits == 2


async def test_workers_write_their_own_files_read_each_others_and_merge(tmp_path: Path) -> None:
    shared = tmp_path / "cache"
    a = ResponseStore(shared, writer="worker-a.sqlite")
    b = ResponseStore(shared, writer="worker-b.sqlite")
    await CachedClient(ScriptedChatCompletionClient(["from a"]), a, identity="m").create(ASK)
    await CachedClient(ScriptedChatCompletionClient(["from b"]), b, identity="m").create(OTHER)
    # Each reads what the other wrote.
    assert (await CachedClient(refusing(), b, identity="m").create(ASK)).content == "from a"
    assert (await CachedClient(refusing(), a, identity="m").create(OTHER)).content == "from b"
    a.close()
    b.close()

    merged = tmp_path / "merged"
    assert merge_stores([shared], merged) == 2
    assert merge_stores([shared], merged) == 0  # merging again adds nothing
    only = ResponseStore(merged, writer=None)
    assert len(only) == 2 and sorted(p.name for p in merged.glob("*.sqlite")) == [
        "responses.sqlite"
    ]
    assert (
        await CachedClient(refusing(), only, identity="m", mode=CacheMode.READ).create(ASK)
    ).content == "from a"


def test_processes_sharing_one_file_lose_no_write(tmp_path: Path) -> None:
    """Several writers on one file (one connection each, as processes would have)."""
    stores = [ResponseStore(tmp_path) for _ in range(4)]

    def write(index: int, store: ResponseStore) -> None:
        for n in range(50):
            store.put(request_key({"w": index, "n": n}), CachedResponse("create", f"{index}-{n}"))

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores[0]) == 200
    found = stores[3].get(request_key({"w": 0, "n": 49}))
    assert found is not None and found.value == "0-49"


def test_keys_are_versioned_and_canonical() -> None:
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1})
    assert request_key({"a": 1}) != request_key({"a": 2})
    assert len(request_key({})) == 64


def test_a_models_identity_keeps_what_shapes_replies_and_drops_the_rest(tmp_path: Path) -> None:
    def identity(text: str) -> str:
        return reply_identity(parse_model_spec(text))

    base = identity("openai:m@http://a:8000/v1?temperature=0.7")
    # Another endpoint of the same model, other timeouts and retries: the same answers.
    assert identity("openai:m@http://b:9000/v1?temperature=0.7&timeout=5&max_retries=1") == base
    assert identity("openai:m@http://a:8000/v1?temperature=0.7&max_tokens=99") == base
    assert identity("openai:m@http://a:8000/v1?temperature=0.2") != base
    assert identity("openai:other@http://a:8000/v1?temperature=0.7") != base
    assert identity("embedded?num_threads=1&prefix_cache_mb=0") == identity("embedded")
    assert identity("embedded?seed=3") != identity("embedded")

    # A retrained model in the same directory is another model.
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    before = identity(f"hf:{model}")
    (model / "model.safetensors").write_bytes(b"new weights")
    assert identity(f"hf:{model}") != before
