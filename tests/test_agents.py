"""Agents: prompts, verifier, spec strings, and the AutoGen chat-agent surface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat

from journey.agents import (
    AnswerVerifier,
    CriticAgent,
    PolicyAgent,
    answers_match,
    step_under_judgement,
)
from journey.agents.backends import (
    ClientPool,
    ScriptedChatCompletionClient,
    parse_model_spec,
)
from journey.agents.prompt_sets import load_prompts
from journey.errors import ConfigError, ModelSpecError

POLICY_FIELDS = {
    "problem": "p",
    "step": 2,
    "next_step": 3,
    "to_step": 1,
    "critique": "c",
    "answer": "7",
}
CRITIC_FIELDS = {"problem": "p", "steps": "s", "step": "x", "step_number": 1, "verdict": "ok"}


@pytest.mark.parametrize(("name", "fields"), [("policy", POLICY_FIELDS), ("critic", CRITIC_FIELDS)])
def test_every_prompt_template_formats(name: str, fields: dict[str, object]) -> None:
    prompts = load_prompts(name)
    for key in prompts.templates:
        text = prompts.format(key, **fields)
        assert text.strip() and "{" not in text.replace("\\boxed{answer}", "")
    with pytest.raises(ConfigError, match="has no template 'nope'"):
        prompts.format("nope")


@pytest.mark.parametrize(
    ("predicted", "gold", "same"),
    [
        ("12", "12", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac12", "\\frac{1}{2}", True),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\text{Evelyn}", "\\text{Evelyn}", True),
        ("Evelyn", "\\text{Evelyn}", True),
        ("13", "12", False),
        ("x", "12", False),
        ("", "12", False),
    ],
)
def test_answers_match(predicted: str, gold: str, same: bool) -> None:
    assert answers_match(predicted, gold) is same


async def test_verifier_as_a_chat_agent_reads_the_boxed_answer() -> None:
    verifier = AnswerVerifier("12")
    reply = await verifier.run(task="Step 2: 3 * 4 = 12, so \\boxed{12}.")
    assert reply.messages[-1].to_model_text() == "correct"
    reply = await verifier.run(task="Step 2: so \\boxed{13}.")
    assert reply.messages[-1].to_model_text() == "incorrect"
    assert verifier.check("0.50", "1/2").correct


async def test_policy_and_critic_play_in_an_autogen_team() -> None:
    policy = PolicyAgent(
        ScriptedChatCompletionClient(["Step 1: 3 * 4 = 12.", "Step 2: \\boxed{12}"])
    )
    critic = CriticAgent(
        ScriptedChatCompletionClient(["VERDICT: correct\nACTION: continue\nREASON: ok"] * 2),
        mode="generate",
    )
    team = RoundRobinGroupChat([policy, critic], termination_condition=MaxMessageTermination(5))
    result = await team.run(task="3 pens with 4 sheep each: how many sheep?")
    texts = [m.to_model_text() for m in result.messages if isinstance(m, TextMessage)]
    assert texts[1] == "Step 1: 3 * 4 = 12."
    assert texts[2].startswith("VERDICT: correct")
    assert texts[3] == "Step 2: \\boxed{12}"


def test_critic_score_mode_needs_log_probabilities() -> None:
    with pytest.raises(ConfigError, match="needs a backend with log-probabilities"):
        CriticAgent(ScriptedChatCompletionClient([]), mode="score")


@pytest.mark.parametrize(
    ("text", "backend", "target", "base_url", "options"),
    [
        ("embedded", "embedded", "", None, {}),
        ("embedded?temperature=0&seed=3", "embedded", "", None, {"temperature": 0.0, "seed": 3}),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", None, {}),
        (
            "openai:Qwen2.5-7B@http://localhost:8000/v1?logprobs=true",
            "openai",
            "Qwen2.5-7B",
            "http://localhost:8000/v1",
            {"logprobs": True},
        ),
        ("hf:/models/x", "hf", "/models/x", None, {}),
        (
            "hf:/models/x?prefix_cache_mb=0&max_batch_size=4",
            "hf",
            "/models/x",
            None,
            {"prefix_cache_mb": 0, "max_batch_size": 4},
        ),
        (
            "embedded?dtype=bfloat16",
            "embedded",
            "",
            None,
            {"dtype": "bfloat16"},
        ),
        ("replay:r.json", "replay", "r.json", None, {}),
    ],
)
def test_model_specs_parse(text, backend, target, base_url, options) -> None:
    spec = parse_model_spec(text)
    assert (spec.backend, spec.target, spec.base_url, dict(spec.options)) == (
        backend,
        target,
        base_url,
        options,
    )
    assert parse_model_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty model spec"),
        ("gpt4", "unknown model spec 'gpt4'"),
        ("openai:", "unknown model spec"),
        ("openai:m@localhost:8000", "should look like openai:MODEL"),
        ("embedded?temprature=1", "bad option 'temprature=1'"),
        ("embedded?temperature=hot", "must be a float"),
        ("embedded?logprobs=true", "do not apply to embedded models"),
        ("openai:m?logprobs=maybe", "must be true or false"),
        ("embedded?packed_weights=false", "packed_weights"),  # an engine switch, bench only
    ],
)
def test_bad_model_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message.replace("?", r"\?")):
        parse_model_spec(text)


def test_a_directory_is_a_local_model_spec(tmp_path: Path) -> None:
    assert parse_model_spec(str(tmp_path)).backend == "hf"


async def test_replay_spec_reads_replies_and_the_pool_shares_clients(tmp_path: Path) -> None:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(["one", "two"]))
    pool = ClientPool()
    client = pool.get(f"replay:{path}")
    assert pool.get(f"replay:{path}") is client
    assert isinstance(client, ScriptedChatCompletionClient) and client.remaining_replies == 2
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(ModelSpecError, match="must hold a list of strings"):
        pool.get(f"replay:{tmp_path / 'bad.json'}")
    with pytest.raises(ModelSpecError, match="does not exist"):
        pool.get("replay:/nope.json")
    await pool.close()


async def test_scored_critic_is_calibrated_against_a_content_free_step() -> None:
    from journey.agents import StepUnderReview
    from journey.agents.backends import FunctionChatCompletionClient

    def biased(messages, labels):  # always prefers continue; a wrong step lifts reflect a bit
        newest = step_under_judgement(messages)
        lift = 2.0 if "7" in newest else 0.0
        return {"continue": -1.0, "reflect": -4.0 + lift, "backtrack": -5.0, "terminate": -9.0}

    client = FunctionChatCompletionClient(lambda _: "Multiply, do not add.", label_scores=biased)
    review = StepUnderReview(
        problem="3 pens of 4 sheep?", previous_steps=[], step_number=1, text="3 + 4 = 7"
    )
    calibrated = await CriticAgent(client, calibrate=True).judge(review)
    assert calibrated.action.action == "reflect" and calibrated.verdict.value == "incorrect"
    assert calibrated.label_scores == {"continue": 0.0, "reflect": 2.0}  # no backtrack at step 1
    assert calibrated.raw.startswith("VERDICT: incorrect\nACTION: reflect")
    raw = await CriticAgent(client).judge(review)
    assert raw.action.action == "continue"


def test_policy_opening_shows_the_worked_example_before_the_problem() -> None:
    opening = PolicyAgent(ScriptedChatCompletionClient([])).opening("What is 2+2?")
    roles = [type(m).__name__ for m in opening]
    assert roles[0] == "SystemMessage" and "AssistantMessage" in roles
    assert str(opening[-1].content).startswith("Problem: What is 2+2?")
    assert any("\\boxed{10}" in str(m.content) for m in opening)
