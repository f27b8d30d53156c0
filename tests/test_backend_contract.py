"""The contract every model backend in the registry keeps, run against each backend that
can run offline: its spec parses and round-trips through `str()`, `create_client` builds
it, `create()` answers a user message with a well-formed `CreateResult`, `close()` works
(twice), options it does not take are refused, and `journey models` lists it.

openai runs against the loopback stub server, vllm against the fake `vllm` of
test_vllm_server, llama against the real `llama-server` (skipped, with the reason, where
test_llama_backend finds none), replay and function offline; embedded and hf load the
embedded model and run only with the `embedded` marker (deselect them with
`-m "not embedded"`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIStubServer, openai_server
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, UserMessage
from test_llama_backend import llama_server_or_skip
from test_vllm_server import MODEL as VLLM_MODEL
from test_vllm_server import fake_vllm
from typer.testing import CliRunner

from journey.agents.backends import (
    ConcurrencyLimitedClient,
    LabelScoringClient,
    LoadableClient,
    RecordingClient,
    RetryCounting,
    ensure_loaded,
    retry_causes,
)
from journey.agents.backends.registry import (
    Backend,
    Option,
    backend,
    backends,
    register_backend,
    unregister_backend,
)
from journey.agents.backends.spec import ModelSpec, create_client, parse_model_spec
from journey.cli import app
from journey.errors import ModelSpecError
from journey.protocols import LabelScoring

__all__ = ["fake_vllm", "openai_server"]  # the fixtures, imported so pytest finds them

ASK = [UserMessage(content="What is 2+2?", source="user")]
FINISH_REASONS = ("stop", "length", "function_calls", "content_filter", "unknown")


def contract_reply(messages: Sequence[LLMMessage]) -> str:
    """The `function:` backend's replies."""
    return "four"


def _replay(request: pytest.FixtureRequest, tmp: Path) -> str:
    path = tmp / "replies.json"
    path.write_text(json.dumps(["four", "five"]))
    return f"replay:{path}?cycle=true"


def _openai(request: pytest.FixtureRequest, tmp: Path) -> str:
    server: OpenAIStubServer = request.getfixturevalue("openai_server")
    return f"openai:stub-model@{server.base_url}?max_retries=0"


def _vllm(request: pytest.FixtureRequest, tmp: Path) -> str:
    request.getfixturevalue("fake_vllm")  # a fake `vllm` that serves the stub
    return f"vllm:{VLLM_MODEL}?python={sys.executable}&start_timeout=30"


def _llama(request: pytest.FixtureRequest, tmp: Path) -> str:
    binary = llama_server_or_skip()
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("JOURNEY_LLAMA_ARGS", "-n 16")  # replies without max_tokens stay short
    return f"llama:embedded?binary={binary}&parallel=1&threads=1&temperature=0"


def _hf(request: pytest.FixtureRequest, tmp: Path) -> str:
    from journey.engine.model_store import embedded_model_dir

    return f"hf:{embedded_model_dir()}?temperature=0&max_batch_size=1"


LIVE_CASES: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "replay": _replay,
    "function": lambda request, tmp: f"function:{__name__}:contract_reply",
    "openai": _openai,
    "vllm": _vllm,
    "llama": _llama,
    "embedded": lambda request, tmp: "embedded?temperature=0&max_batch_size=1",
    "hf": _hf,
}
"""Each backend's live case: its spec, made with the fixtures (servers) it needs."""
NEEDS_EMBEDDED = frozenset({"embedded", "hf"})
"""Cases that load the embedded model: slow, so under the `embedded` marker."""

SKIPPED: dict[str, str] = {}
"""Registered backends without a live case, each with the reason (none today)."""

# A spec per backend that parses (nothing is built from it): the refusal checks need no server.
PARSE_EXAMPLES = {
    "embedded": "embedded",
    "hf": "hf:/models/trained",
    "openai": "openai:m@http://127.0.0.1:9/v1",
    "vllm": "vllm:org/model",
    "llama": "llama:/models/model.gguf",
    "replay": "replay:replies.json",
    "function": f"function:{__name__}:contract_reply",
}


def _live(name: str) -> Any:
    marks = [pytest.mark.embedded] if name in NEEDS_EMBEDDED else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_live(name) for name in LIVE_CASES])
def live_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The spec of one backend's live case, its server (if any) running."""
    return LIVE_CASES[request.param](request, tmp_path)


# --- the contract, per backend ----------------------------------------------------------


def test_every_registered_backend_has_a_case_or_a_reasoned_skip() -> None:
    names = {b.name for b in backends()}
    assert names == set(LIVE_CASES) | set(SKIPPED), "add a live case or a reasoned skip"
    assert not set(LIVE_CASES) & set(SKIPPED)
    assert all(reason.strip() for reason in SKIPPED.values())
    assert names == set(PARSE_EXAMPLES)


def test_the_spec_parses_and_round_trips(live_spec: str) -> None:
    spec = parse_model_spec(live_spec)
    assert isinstance(spec, ModelSpec) and spec.backend in LIVE_CASES
    assert parse_model_spec(str(spec)) == spec
    assert str(parse_model_spec(str(spec))) == str(spec)


async def test_create_answers_a_user_message_and_close_works_twice(live_spec: str) -> None:
    client = create_client(parse_model_spec(live_spec))
    assert isinstance(client, ChatCompletionClient)
    try:
        result = await client.create(ASK, extra_create_args={"max_tokens": 8})
        assert isinstance(result, CreateResult)
        assert isinstance(result.content, str)
        assert result.finish_reason in FINISH_REASONS
        usage = result.usage
        for count in (usage.prompt_tokens, usage.completion_tokens):
            assert isinstance(count, int) and count >= 0
        total = client.total_usage()
        assert total.prompt_tokens >= 0 and total.completion_tokens >= 0
    finally:
        await client.close()
    await client.close()  # every backend's close is idempotent today


@pytest.mark.parametrize("name", sorted(PARSE_EXAMPLES))
def test_every_backends_spec_round_trips_without_building(name: str) -> None:
    spec = parse_model_spec(PARSE_EXAMPLES[name])
    assert spec.backend == name and parse_model_spec(str(spec)) == spec


async def test_the_request_limit_wrapper_forwards_what_jobs_read(live_spec: str) -> None:
    client = create_client(parse_model_spec(live_spec))
    wrapper = ConcurrencyLimitedClient(client, 2)
    try:
        for protocol in (LoadableClient, RecordingClient, LabelScoringClient):
            assert isinstance(wrapper, protocol) == isinstance(client, protocol), protocol
        assert isinstance(wrapper, RetryCounting)  # counts none where the client counts none
        await ensure_loaded(wrapper)
        assert isinstance((await wrapper.create(ASK)).content, str)
        assert retry_causes(wrapper) == retry_causes(client)
        if isinstance(client, RetryCounting):
            assert wrapper.retry_count == client.retry_count
        if isinstance(client, RecordingClient):
            assert wrapper.requests is client.requests and len(client.requests) == 1
        if isinstance(client, LabelScoringClient):
            # Every scorer says what its scores are, and the wrapper says the same.
            assert client.label_scoring in LabelScoring
            assert wrapper.label_scoring is client.label_scoring
    finally:
        await wrapper.close()


@pytest.mark.parametrize("name", sorted(PARSE_EXAMPLES))
def test_options_the_backend_does_not_take_are_refused(name: str) -> None:
    chosen = backend(name)
    others = {o.name: o for b in backends() for o in b.options if not chosen.takes(o.name)}
    assert others, f"every option applies to {name}?"
    for option in others.values():
        text = f"{PARSE_EXAMPLES[name]}?{option.name}={_valid_value(option)}"
        with pytest.raises(ModelSpecError, match=f"do not apply to {name} models") as caught:
            parse_model_spec(text)
        assert option.name in str(caught.value)
    for option in chosen.options:  # ...and the ones it takes are accepted
        text = f"{PARSE_EXAMPLES[name]}?{option.name}={_valid_value(option)}"
        assert option.name in parse_model_spec(text).options


def _valid_value(option: Option) -> str:
    if option.choices:
        return option.choices[0]
    return {bool: "true", int: "1", float: "1.5", str: "x"}[option.type]


def test_journey_models_lists_every_backend_with_its_options() -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for registered in backends():
        assert f"{registered.name}: {registered.summary}" in lines
        assert any(line.strip().startswith(f"syntax: {registered.syntax}") for line in lines)
        for option in registered.options:
            assert any(line.split()[:2] == [option.name, option.type.__name__] for line in lines), (
                option.name
            )


# --- the registry itself ----------------------------------------------------------------


async def test_a_backend_registered_in_one_place_works_everywhere() -> None:
    from journey.agents.backends.scripted import FunctionChatCompletionClient

    def parse(rest: str, spec: str) -> tuple[str, str | None] | None:
        return (rest, None) if rest else None

    def create(spec: ModelSpec) -> ChatCompletionClient:
        return FunctionChatCompletionClient(lambda messages: spec.target.upper())

    register_backend(
        Backend(
            "shout",
            "replies with its target in capitals",
            "shout:WORD",
            (Option("seed", int, "ignored"),),
            parse=parse,
            create=create,
        )
    )
    try:
        spec = parse_model_spec("shout:hey?seed=3")
        assert (spec.backend, spec.target, dict(spec.options)) == ("shout", "hey", {"seed": 3})
        assert spec.takes("seed") and not spec.takes("max_batch_size")
        client = create_client(spec)
        assert (await client.create(ASK)).content == "HEY"
        with pytest.raises(ModelSpecError, match="do not apply to shout models"):
            parse_model_spec("shout:hey?cycle=true")
        with pytest.raises(ModelSpecError, match=r"or 'shout:WORD'$"):
            parse_model_spec("nonsense")
        output = CliRunner().invoke(app, ["models"]).output
        assert "shout: replies with its target in capitals" in output
    finally:
        unregister_backend("shout")
    assert "shout" not in {b.name for b in backends()}


def test_the_registry_refuses_clashing_backends() -> None:
    taken = backend("replay")
    with pytest.raises(ValueError, match="already registered"):
        register_backend(taken)
    clash = Backend("clash", "s", "clash:X", (Option("seed", str, "a str seed"),), *_no_ops())
    with pytest.raises(ValueError, match="'seed' of backend 'clash' is a str"):
        register_backend(clash)
    with pytest.raises(ValueError, match="lower-case word"):
        register_backend(Backend("Bad Name", "s", "x", (), *_no_ops()))
    with pytest.raises(ModelSpecError, match="no model backend named 'nope'"):
        backend("nope")
    assert "clash" not in {b.name for b in backends()}


def _no_ops() -> tuple[Callable[[str, str], None], Callable[[ModelSpec], ChatCompletionClient]]:
    def create(spec: ModelSpec) -> ChatCompletionClient:
        raise AssertionError("never built")

    return (lambda rest, spec: None), create


def test_with_default_sets_an_option_only_where_the_backend_takes_it() -> None:
    local = parse_model_spec("embedded")
    assert local.with_default("max_batch_size", 4).options == {"max_batch_size": 4}
    mine = parse_model_spec("embedded?max_batch_size=2")
    assert mine.with_default("max_batch_size", 4) is mine  # the spec's own value wins
    server = parse_model_spec("openai:m@http://127.0.0.1:9/v1")
    assert server.with_default("max_batch_size", 4) is server  # a server takes no such option


def test_agent_options_are_left_out_of_the_client() -> None:
    agent_options = {o.name for b in backends() for o in b.options if o.agent}
    # The agent's, the router's, the run's (prices) and the pool's (rate limits).
    assert agent_options == {"max_tokens", "concurrency", "price_in", "price_out", "rpm", "tpm"}
    assert all(backend(name).agent_options <= agent_options for name in PARSE_EXAMPLES)
