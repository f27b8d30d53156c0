"""Process labels from rollouts (Math-Shepherd): the judge, its spec, and a session and a
synthesis run judged by it.

The fake completer finishes a solution by looking at the steps it is shown: a path
whose newest step says "good" reaches the answer in `GOOD_HITS` of every 4 tries, one
that says "bad" never does; some tries think out loud or give no answer at all, as
real models do.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage, UserMessage
from test_beam import SOLVED, ScriptedPolicy
from test_critic_eval import SOLUTIONS, write_dataset

from journey.agents import (
    AnswerVerifier,
    PolicyAgent,
    RolloutJudge,
    RolloutSettings,
    StepUnderReview,
    parse_rollout_spec,
)
from journey.agents.backends import FunctionChatCompletionClient
from journey.errors import ModelSpecError
from journey.evaluation.critic_eval import CriticEvalOptions, CriticEvalRunner, load_critic_records
from journey.exports import ExportOptions, export_runs
from journey.problems import load_problems
from journey.problems.step_labels import load_labelled_solutions
from journey.protocols import (
    Backtrack,
    Continue,
    CriticVerdictGiven,
    LabelSource,
    Reflect,
    RolloutTally,
    StepVerdict,
)
from journey.runs import RunDirectory, SynthesisOptions, SynthesisRunner
from journey.sessions import SessionLimits
from journey.sessions.beam import BeamSearchSession

PROBLEM = "What is 3 + 4?"
GOOD_HITS = 3


class Completer:
    """Finishes a solution: k-th request for one path gets the k-th of four endings."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    def __call__(self, messages: Sequence[LLMMessage]) -> str:
        prompt = str([m for m in messages if isinstance(m, UserMessage)][-1].content)
        steps = prompt.split("The start of a solution:", 1)[1].split("Continue this", 1)[0]
        newest = steps.strip().splitlines()[-1]
        k = self.asked[prompt] % 4
        self.asked[prompt] += 1
        if "bad" in newest:
            return ["So it is \\boxed{8}.", "I think \\boxed{9}", "Hmm.", "\\boxed{6}"][k]
        endings = [
            "<think>maybe \\boxed{9}? no.</think>Adding gives \\boxed{7}.",
            "Then 3 + 4 = 7, so \\boxed{7}.",
            "The answer is \\boxed{7}.",
            "I am not sure how to go on",  # no final answer: unanswered, never correct
        ]
        return endings[k] if k < GOOD_HITS else endings[3]


def review(text: str, *, step: int = 2, gold: str | None = "7", final: str | None = None):
    return StepUnderReview(
        problem=PROBLEM,
        previous_steps=["good start."] * (step - 1),
        step_number=step,
        text=text,
        final_answer=final,
        verifier=AnswerVerifier(gold) if gold is not None else None,
    )


def judge(samples: int = 4) -> tuple[RolloutJudge, FunctionChatCompletionClient]:
    client = FunctionChatCompletionClient(Completer())
    return RolloutJudge(client, RolloutSettings(samples=samples, max_tokens=64)), client


# -- the spec ------------------------------------------------------------------------------


def test_a_plain_critic_spec_is_not_a_rollout_judge() -> None:
    assert parse_rollout_spec("embedded") is None
    assert parse_rollout_spec("openai:gpt-4o-mini") is None


def test_a_rollout_spec_splits_the_judge_options_from_the_model_options() -> None:
    spec = parse_rollout_spec("rollout:llama:http://h:8080/v1?timeout=30&n=16&tokens=256")
    assert spec is not None
    assert spec.model == "llama:http://h:8080/v1?timeout=30"
    assert (spec.settings.samples, spec.settings.max_tokens) == (16, 256)
    assert spec.settings.temperature == RolloutSettings().temperature
    assert str(spec).startswith("rollout:llama:http://h:8080/v1?timeout=30&n=16")
    assert parse_rollout_spec(str(spec)) == spec  # what a run records reads back the same


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rollout:", "names no model"),
        ("rollout:embedded?n=many", "bad rollout option"),
        ("rollout:embedded?n=0", "n >= 1"),
        ("rollout:embedded?temperature=-1", "temperature"),
    ],
)
def test_a_malformed_rollout_spec_is_refused_in_one_line(text: str, complaint: str) -> None:
    with pytest.raises(ModelSpecError, match=complaint):
        parse_rollout_spec(text)


def test_synthesis_options_refuse_a_malformed_rollout_spec_before_any_work() -> None:
    with pytest.raises(ModelSpecError, match="bad rollout option"):
        SynthesisOptions(critic="rollout:embedded?n=x")


def test_a_run_records_the_judge_but_builds_its_client_from_the_model() -> None:
    options = SynthesisOptions(policy="embedded", critic="rollout:embedded?n=4")
    assert options.client_models["critic"] == "embedded"
    assert options.models["critic"] == "rollout:embedded?n=4&temperature=0.7&tokens=512"
    changed = SynthesisOptions(policy="embedded", critic="rollout:embedded?n=8")
    assert changed.models["critic"] != options.models["critic"]  # a resume would refuse it


# -- the judge -----------------------------------------------------------------------------


def test_a_step_some_completions_finish_is_correct_with_their_share_as_reward() -> None:
    rollout, client = judge()
    turn = asyncio.run(rollout.judge(review("good step.")))
    assert (turn.verdict, turn.source) == (StepVerdict.CORRECT, LabelSource.ROLLOUT)
    assert turn.rollouts == RolloutTally(samples=4, correct=GOOD_HITS, unanswered=1)
    assert turn.reward == GOOD_HITS / 4
    assert isinstance(turn.action, Continue)
    assert "3 of 4" in turn.reason
    # The thought's boxed 9 was never read as an answer: the answer after it was.
    assert "ANSWERS: 7, 7, 7, -" in turn.raw
    assert len(client.requests) == 4


def test_a_step_no_completion_finishes_is_incorrect_and_is_tried_again() -> None:
    rollout, _ = judge()
    later = asyncio.run(rollout.judge(review("bad step.", step=3)))
    assert (later.verdict, later.reward, later.source) == (
        StepVerdict.INCORRECT,
        0.0,
        LabelSource.ROLLOUT,
    )
    assert later.action == Backtrack(to_step=2, critique=later.reason)
    first = asyncio.run(rollout.judge(review("bad step.", step=1)))
    assert isinstance(first.action, Reflect)


def test_without_a_gold_answer_the_verdict_is_unknown_and_nothing_is_asked() -> None:
    rollout, client = judge()
    turn = asyncio.run(rollout.judge(review("good step.", gold=None)))
    assert (turn.verdict, turn.source, turn.reward) == (StepVerdict.UNKNOWN, LabelSource.NONE, None)
    assert [v.kind for v in turn.violations] == ["no_gold_answer"]
    assert client.requests == []


def test_a_final_answer_is_checked_by_the_verifier_not_rolled_out() -> None:
    rollout, client = judge()
    right = asyncio.run(rollout.judge(review("\\boxed{7}", final="7")))
    wrong = asyncio.run(rollout.judge(review("\\boxed{8}", final="8")))
    assert (right.verdict, right.source, right.reward) == (
        StepVerdict.CORRECT,
        LabelSource.VERIFIER,
        1.0,
    )
    assert (wrong.verdict, wrong.reward) == (StepVerdict.INCORRECT, 0.0)
    assert client.requests == []


def test_a_failing_model_fails_the_judgement_instead_of_labelling_the_step() -> None:
    def broken(messages: Sequence[LLMMessage]) -> str:
        raise ConnectionError("server went away")

    rollout = RolloutJudge(FunctionChatCompletionClient(broken), RolloutSettings(samples=2))
    with pytest.raises(ConnectionError):
        asyncio.run(rollout.judge(review("good step.")))


# -- in sessions and runs ------------------------------------------------------------------


def test_beam_search_ranks_steps_by_their_rollout_estimate() -> None:
    session = BeamSearchSession(
        PROBLEM,
        gold_answer="7",
        limits=SessionLimits(max_depth=4),
        config={"beam_width": 3, "beam_size": 2},
        policy=PolicyAgent(FunctionChatCompletionClient(ScriptedPolicy(SOLVED))),
        critic=judge()[0],
    )
    result = asyncio.run(session.run())
    verdicts = [e for e in result.events if isinstance(e, CriticVerdictGiven)]
    assert verdicts and all(v.source is LabelSource.ROLLOUT for v in verdicts)
    for verdict in verdicts:
        assert verdict.rollouts is not None
        assert verdict.reward == verdict.rollouts.value
    assert result.ended.outcome == "solved"


def test_a_synthesis_run_judged_by_rollouts_exports_prm_labels_with_their_source(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"problem": PROBLEM, "answer": "7"}) + "\n", encoding="utf-8")
    clients = {
        "policy": FunctionChatCompletionClient(ScriptedPolicy(SOLVED)),
        "critic": FunctionChatCompletionClient(Completer()),
    }
    options = SynthesisOptions(
        strategy="debate",
        policy="embedded",
        critic="rollout:embedded?n=4&tokens=64",
        limits=SessionLimits(max_turns=8),
    )
    report = asyncio.run(
        SynthesisRunner(options, clients=clients).run(tmp_path / "run", load_problems(path).records)
    )
    assert report.crashed == 0
    run = RunDirectory(tmp_path / "run")
    recorded = json.loads((run.root / "run.json").read_text(encoding="utf-8"))
    assert json.dumps(recorded).count("rollout:embedded?n=4") >= 1
    out = tmp_path / "prm.jsonl"
    export_runs([run.root], out, ExportOptions(format="prm"))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows
    sources = {source for row in rows for source in row["label_sources"]}
    assert "rollout" in sources
    assert sources <= {"rollout", "verifier"}
    # The verdicts' tallies ride along, as `journey label`'s would, with their judge.
    for row in rows:
        assert row["rollout_judge"] == "rollout:embedded?n=4&temperature=0.7&tokens=64"
        for estimate, source in zip(row["rollouts"], row["label_sources"], strict=True):
            assert (estimate is not None) == (source == "rollout")


# -- judging the rollout judge: `journey eval critic --critic rollout:...` ----------------


def oracle_completer(messages: Sequence[LLMMessage]) -> str:
    """Finishes right from a path that holds no wrong step yet, wrong from one that does:
    the perfect model a rollout judge could ask."""
    prompt = str([m for m in messages if isinstance(m, UserMessage)][-1].content)
    problem = prompt.split("Problem: ", 1)[1].split("\n\n", 1)[0]
    shown = prompt.count("\nStep ") + prompt.startswith("Step ")
    solution = next(s for s in SOLUTIONS if s["question"] == problem)
    first_error = solution["first_error_step"]
    wrong = first_error is not None and shown >= first_error
    return f"So the answer is \\boxed{{{'-1' if wrong else solution['gold_answer']}}}."


async def test_a_rollout_judge_with_a_perfect_completer_scores_perfectly(tmp_path: Path) -> None:
    data = load_labelled_solutions(write_dataset(tmp_path / "steps.jsonl"))
    options = CriticEvalOptions(critic="rollout:embedded?n=2")
    assert options.critic_name == "rollout:embedded?n=2&temperature=0.7&tokens=512"
    client = FunctionChatCompletionClient(oracle_completer)
    metrics = await CriticEvalRunner(options, client=client).run(
        tmp_path / "out", data.solutions, dataset="steps.jsonl"
    )
    assert metrics.critic == options.critic_name
    assert metrics.overall.f1 == 1.0
    records = load_critic_records(tmp_path / "out")
    sources = {j.source for r in records for j in r.judgements}
    assert sources == {"rollout"}
