"""Base models as the policy: a local model without a chat template gets plain-text prompts.

The seed ran a base model (deepseek-math-7b-base) as its policy. Here the embedded model
stands in for one: the same weights with the chat template taken away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from autogen_core.models import AssistantMessage, SystemMessage, UserMessage
from transformers import AutoTokenizer

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.agents.backends.transformers_client import TransformersChatCompletionClient
from journey.engine.model_store import embedded_model_dir
from journey.engine.plain_prompt import load_plain_template
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.pairs_sampling import PairsSampler
from journey.evaluation.runner import EvalOptions, EvalRunner, load_records
from journey.problems import load_problems
from journey.sessions import DebateSession, SessionLimits

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model's files, linked, with no chat template."""
    source = embedded_model_dir()
    out = tmp_path_factory.mktemp("base-model")
    for path in source.iterdir():
        if path.name == "chat_template.jinja":
            continue
        if path.name == "tokenizer_config.json":
            config = json.loads(path.read_text())
            config.pop("chat_template", None)
            (out / path.name).write_text(json.dumps(config))
        else:
            (out / path.name).symlink_to(path)
    return out


@pytest.fixture(scope="module")
def client(base_model_dir: Path) -> Iterator[TransformersChatCompletionClient]:
    model = TransformersChatCompletionClient(
        base_model_dir, model_name="base", temperature=0.0, max_new_tokens=16
    )
    yield model
    asyncio.run(model.close())


def test_a_model_without_a_chat_template_reads_plain_text(
    client: TransformersChatCompletionClient, base_model_dir: Path
) -> None:
    messages = [
        SystemMessage(content="Solve step by step."),
        UserMessage(content="Problem: What is 2 + 3?", source="user"),
        AssistantMessage(content="Step 1: 2 + 3 = 5.", source="policy"),
        UserMessage(content="Write step 2.", source="user"),
    ]
    prompt = load_plain_template().render(messages)
    assert "<|im_start|>" not in prompt and prompt.startswith("Solve step by step.\n\n")
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    plain_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert client.count_tokens(messages) == len(plain_ids)  # the prompt it reads is this one
    result = asyncio.run(client.create(messages))
    assert isinstance(result.content, str) and "\n\n" not in result.content  # a turn ends there
    assert result.usage.completion_tokens >= 1


def test_a_base_model_policy_runs_a_debate(client: TransformersChatCompletionClient) -> None:
    critic = ScriptedChatCompletionClient(
        ["VERDICT: incorrect\nACTION: reflect\nREASON: check the sum."], cycle=True
    )
    session = DebateSession(
        "What is 2 + 3?",
        gold_answer="5",
        policy=PolicyAgent(client, max_tokens=16),
        critic=CriticAgent(critic, mode="generate"),
        limits=SessionLimits(max_turns=2),
    )
    result = asyncio.run(session.run())
    steps = [e for e in result.events if e.type == "policy_step"]
    assert result.ended.error is None, result.ended.error
    assert steps and all(s.content for s in steps)  # type: ignore[union-attr]


def test_eval_and_pairs_run_a_base_model(
    client: TransformersChatCompletionClient, tmp_path: Path
) -> None:
    data = tmp_path / "sums.jsonl"
    data.write_text(json.dumps({"problem": "What is 2 + 3?", "answer": "5"}) + "\n")
    problems = load_problems(data).records
    evaluation = EvalRunner(EvalOptions(model="hf:./base", max_new_tokens=16), client=client)
    metrics = asyncio.run(evaluation.run(tmp_path / "eval", problems, dataset=str(data)))
    assert metrics.problems == 1
    [record] = load_records(tmp_path / "eval")
    assert record.output.strip() and "<|im_start|>" not in record.output
    sampler = PairsSampler(
        PairsOptions(model="hf:./base", samples=2, max_new_tokens=16, batch_size=2),
        grade=grade_output,
        client=client,
    )
    card = asyncio.run(sampler.run(tmp_path / "pairs.jsonl", problems, dataset=str(data)))
    assert card.samples == 2 and card.failed_requests == 0
