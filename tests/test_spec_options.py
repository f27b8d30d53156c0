"""Model-spec options that are read by the agents, not the clients, and the openai-only ones."""

from __future__ import annotations

import pytest

from journey.agents.backends import spec as spec_module
from journey.agents.backends.spec import ClientPool, client_spec, parse_model_spec
from journey.errors import ModelSpecError

URL = "http://127.0.0.1:9/v1"  # never asked: clients are only built


@pytest.mark.parametrize(
    "text",
    ["embedded?max_tokens=256", "hf:/tmp/model?max_tokens=256", f"openai:m@{URL}?max_tokens=256",
     "vllm:Qwen/Qwen2.5-7B-Instruct?max_tokens=256"],
)  # fmt: skip
def test_every_generating_backend_takes_max_tokens(text: str):
    parsed = parse_model_spec(text)
    assert parsed.options["max_tokens"] == 256
    assert "max_tokens" not in client_spec(parsed).options
    assert "max_tokens=256" in str(parsed)


@pytest.mark.parametrize(("value", "quoted"), [("0", "0"), ("-3", "-3"), ("many", "'many'")])
def test_max_tokens_must_be_a_positive_int(value: str, quoted: str):
    with pytest.raises(ModelSpecError, match=quoted):
        parse_model_spec(f"embedded?max_tokens={value}")


@pytest.mark.parametrize("text", ["replay:r.json?max_tokens=5", "function:m:f?max_tokens=5"])
def test_scripted_backends_take_no_max_tokens(text: str):
    with pytest.raises(ModelSpecError, match="max_tokens"):
        parse_model_spec(text)


def test_openai_options_reasoning_and_api():
    parsed = parse_model_spec(f"openai:base-7b@{URL}?api=completions&reasoning=false")
    assert parsed.options == {"api": "completions", "reasoning": False}
    with pytest.raises(ModelSpecError, match="'responses'"):
        parse_model_spec(f"openai:m@{URL}?api=responses")
    with pytest.raises(ModelSpecError, match="reasoning"):
        parse_model_spec("embedded?reasoning=true")


async def test_roles_differing_only_in_max_tokens_share_one_client(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pool = ClientPool()
    policy = pool.get(f"openai:m@{URL}?max_tokens=256&temperature=0.7")
    critic = pool.get(f"openai:m@{URL}?temperature=0.7&max_tokens=32")
    other = pool.get(f"openai:m@{URL}?temperature=0.2")
    await pool.close()

    assert policy is critic and policy is not other


def test_journey_models_explains_the_new_options():
    text = spec_module.__doc__ or ""
    for option in ("max_tokens=N", "reasoning=true", "api=completions"):
        assert option in text
