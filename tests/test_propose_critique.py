"""The propose-critique strategy: the policy checks its own steps and picks the action.

Unit tests drive `ProposeCritiqueSession` with scripted replies; the resume and runner
tests use `fake_self_policy`, which answers from the messages alone (also reachable as
the model spec `function:test_propose_critique:fake_self_policy`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import AssistantMessage, LLMMessage
from test_runner import comparable, dataset, problem_text

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import FunctionChatCompletionClient, ScriptedChatCompletionClient
from journey.agents.self_critique import CHECK_TOKENS, SelfCritiquePolicy
from journey.longthought import LongThoughtWriter
from journey.protocols import (
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    Outcome,
    ProblemPosed,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    Terminate,
    VerifierChecked,
)
from journey.protocols.parsing import parse_self_critique_reply
from journey.runs import RunDirectory, SynthesisOptions, SynthesisRunner, read_event_log
from journey.sessions import DebateSession, RestoreError, SessionLimits, SessionResult
from journey.sessions.propose_critique import ProposeCritiqueSession
from journey.sessions.strategies import strategy_session

PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?"
STEP1 = "Step 1: There are 3 pens of 4 sheep.\nCheck: this restates the problem.\nACTION: continue"
FINAL = "Step 2: 3 * 4 = 12, so \\boxed{12}.\nCheck: 3 fours are 12.\nACTION: terminate"


def session(
    replies: Sequence[str], *, gold: str | None = "12", limits: SessionLimits | None = None
) -> tuple[ProposeCritiqueSession, ScriptedChatCompletionClient, ScriptedChatCompletionClient]:
    policy_client = ScriptedChatCompletionClient(replies)
    critic_client = ScriptedChatCompletionClient([])
    pc = ProposeCritiqueSession(
        PROBLEM,
        gold_answer=gold,
        policy=PolicyAgent(policy_client),
        critic=CriticAgent(critic_client, mode="generate"),
        limits=limits,
        models={"policy": "replay:policy", "critic": "replay:critic"},
    )
    return pc, policy_client, critic_client


def kinds(result: SessionResult) -> list[str]:
    return [e.type for e in result.events]


def of_type(result: SessionResult, kind: type[Any]) -> list[Any]:
    return [e for e in result.events if isinstance(e, kind)]


# -- parsing the reply --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "content", "action", "verdict", "reason"),
    [
        (
            "Step 3: 4 * 5 = 20.\nCheck: the product is right.\nACTION: continue",
            "4 * 5 = 20.",
            Continue(),
            StepVerdict.CORRECT,
            "the product is right.",
        ),
        (
            "**Step 3:** 2 + 5 = 7\n**Check:** I added, I must multiply.\n**ACTION:** backtrack 1",
            "2 + 5 = 7",
            Backtrack(to_step=1, critique="I added, I must multiply."),
            StepVerdict.INCORRECT,
            "I added, I must multiply.",
        ),
        (
            "Step 3: so 7.\nCheck: this is wrong",  # no ACTION: the verdict decides
            "so 7.",
            Reflect(critique="this is wrong"),
            StepVerdict.INCORRECT,
            "this is wrong",
        ),
        (
            "Step 3: \\boxed{7}\nSelf-check: fine\nAction: terminate",
            "\\boxed{7}",
            Terminate(reason="fine"),
            StepVerdict.CORRECT,
            "fine",
        ),
    ],
)
def test_a_reply_splits_into_step_and_check(
    reply: str, content: str, action: Any, verdict: StepVerdict, reason: str
) -> None:
    parsed = parse_self_critique_reply(reply, 3)
    assert parsed.step.content == content
    assert (parsed.check.action, parsed.check.verdict, parsed.check.reason) == (
        action,
        verdict,
        reason,
    )
    # The verdict is implied by the action, not repaired; only a missing action is.
    missing = ["missing_action"] if "ACTION" not in reply.upper() else []
    assert [v.kind for v in parsed.check.violations] == missing


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        ("Step 2: 3 * 4 = 12.", "no check written; read as continue"),
        ("Step 2: 12.\nCheck: hmm\nACTION: shrug", "no action in the check"),
    ],
)
def test_an_unparseable_action_reads_as_continue_with_one_violation(
    reply: str, detail: str
) -> None:
    parsed = parse_self_critique_reply(reply, 2)
    assert parsed.step.usable
    assert parsed.check.action == Continue() and parsed.check.verdict is StepVerdict.UNKNOWN
    (violation,) = parsed.check.violations
    assert violation.kind == "unparseable_action" and detail in violation.detail
    assert violation.repaired


def test_the_agent_is_built_from_the_runner_s_policy() -> None:
    client = ScriptedChatCompletionClient([])
    policy = PolicyAgent(client, max_tokens=100, temperature=0.5, max_reasks=1)
    agent = SelfCritiquePolicy.from_policy(policy)
    assert agent.model_client is client and agent.temperature == 0.5 and agent.max_reasks == 1
    assert agent.max_tokens == 100 + CHECK_TOKENS
    assert SelfCritiquePolicy.from_policy(agent) is agent
    assert "Check:" in str(agent.opening(PROBLEM)[0].content)


# -- the session --------------------------------------------------------------------------


async def test_continue_path_ends_on_a_verified_answer() -> None:
    pc, policy_client, critic_client = session([STEP1, FINAL])
    result = await pc.run()
    assert kinds(result) == [
        "problem_posed",
        "policy_step",
        "critic_verdict",
        "action_applied",
        "policy_step",
        "critic_verdict",
        "verifier_result",
        "action_applied",
        "session_ended",
    ]
    posed = result.events[0]
    assert isinstance(posed, ProblemPosed)
    assert posed.strategy == "propose-critique" and posed.models == {"policy": "replay:policy"}
    first, final = of_type(result, CriticVerdictGiven)
    assert (first.verdict, first.action, first.reason) == (
        StepVerdict.CORRECT,
        Continue(),
        "this restates the problem.",
    )
    assert first.raw == "Check: this restates the problem.\nACTION: continue"
    assert first.usage.completion_tokens == 0  # counted on the step
    assert final.action == Terminate(answer="12", reason="3 fours are 12.")
    applied = of_type(result, ActionApplied)
    assert [a.source for a in applied] == [Role.POLICY, Role.VERIFIER]
    ended = result.ended
    assert (ended.outcome, ended.stop_reason, ended.final_answer) == (
        Outcome.SOLVED,
        StopReason.VERIFIED_ANSWER,
        "12",
    )
    assert ended.usage[Role.CRITIC].total == 0 and ended.usage[Role.POLICY].completion_tokens > 0
    assert critic_client.requests == []  # the critic is never asked
    # The step alone enters the tree; the dialogue shows step and check in canonical form.
    assert pc.tree[first.node_id].text == "There are 3 pens of 4 sheep."
    second_request = policy_client.requests[1]
    assert second_request[-2] == AssistantMessage(content=STEP1, source="policy")
    assert second_request[-1].content == "Write Step 2."


async def test_a_self_chosen_reflect_rewrites_the_step() -> None:
    wrong = "Step 2: 3 + 4 = 7.\nCheck: the pens hold 4 each, so I must multiply.\nACTION: reflect"
    pc, policy_client, _ = session([STEP1, wrong, FINAL])
    result = await pc.run()
    assert result.ended.outcome is Outcome.SOLVED and result.ended.reflections == 1
    reflected = of_type(result, ActionApplied)[1]
    assert reflected.action == Reflect(critique="the pens hold 4 each, so I must multiply.")
    assert reflected.source is Role.POLICY and reflected.note == "rewrite step 2"
    assert policy_client.requests[2][-1].content == (
        "You found a mistake in step 2: the pens hold 4 each, so I must multiply.\n"
        "Write Step 2 again, correctly."
    )
    rejected, kept = pc.tree.children(1)
    assert rejected.verdict is StepVerdict.INCORRECT and kept.verified
    transcript = LongThoughtWriter().write(result.events)
    assert "Wait, step 2 is wrong. The pens hold 4 each, so I must multiply." in transcript


async def test_a_self_chosen_backtrack_abandons_the_later_steps() -> None:
    replies = [
        STEP1,
        "Step 2: Each pen has 3 sheep.\nCheck: this follows.\nACTION: continue",
        "Step 3: 3 * 3 = 9.\nCheck: step 2 swapped pens and sheep.\nACTION: backtrack 1",
        FINAL,
    ]
    pc, policy_client, _ = session(replies)
    result = await pc.run()
    assert result.ended.outcome is Outcome.SOLVED and result.ended.backtracks == 1
    back = of_type(result, ActionApplied)[2]
    assert back.action == Backtrack(to_step=1, critique="step 2 swapped pens and sheep.")
    assert back.cursor_id == 1 and back.note == "abandon steps 2..3"
    assert "Go back to step 1 and continue from there. Write Step 2." in str(
        policy_client.requests[3][-1].content
    )
    assert [n.text for n in pc.tree.path(result.ended.final_node_id or 0)][1:] == [
        "There are 3 pens of 4 sheep.",
        "3 * 4 = 12, so \\boxed{12}.",
    ]


async def test_a_wrong_final_answer_comes_back_as_a_negative_signal() -> None:
    wrong = "Step 2: 3 + 4 = 7, so \\boxed{7}.\nCheck: I added the numbers.\nACTION: terminate"
    pc, policy_client, _ = session([STEP1, wrong, FINAL])
    result = await pc.run()
    checks = of_type(result, VerifierChecked)
    assert [(c.predicted, c.correct) for c in checks] == [("7", False), ("12", True)]
    assert policy_client.requests[2][-1].content == (
        "Your final answer 7 is wrong. Find the mistake and write Step 2 again, correctly."
    )
    applied = of_type(result, ActionApplied)[1]
    assert applied.source is Role.VERIFIER and isinstance(applied.action, Reflect)
    assert result.ended.outcome is Outcome.SOLVED and result.ended.reflections == 1


async def test_a_final_answer_the_policy_doubts_is_not_verified() -> None:
    doubted = (
        "Step 2: So \\boxed{7}.\nCheck: 3 + 4 is not the count, I must multiply.\nACTION: reflect"
    )
    pc, _, _ = session([STEP1, doubted, FINAL])
    result = await pc.run()
    assert [c.predicted for c in of_type(result, VerifierChecked)] == ["12"]
    assert of_type(result, ActionApplied)[1].source is Role.POLICY
    assert result.ended.outcome is Outcome.SOLVED


async def test_an_unparseable_action_is_counted_and_read_as_continue() -> None:
    garbled = "Step 1: There are 3 pens of 4 sheep.\nCheck: hmm.\nACTION: maybe"
    pc, _, _ = session([garbled, FINAL])
    result = await pc.run()
    verdict = of_type(result, CriticVerdictGiven)[0]
    assert verdict.action == Continue() and verdict.verdict is StepVerdict.UNKNOWN
    assert [v.kind for v in verdict.violations] == ["unparseable_action"]
    assert result.ended.violations == 1 and result.ended.outcome is Outcome.SOLVED


async def test_terminate_without_an_answer_is_no_way_out_when_there_is_a_gold_answer() -> None:
    quit_ = "Step 1: There are 3 pens.\nCheck: I cannot go on.\nACTION: terminate"
    pc, _, _ = session([quit_, FINAL])
    result = await pc.run()
    verdict = of_type(result, CriticVerdictGiven)[0]
    assert verdict.action == Continue()
    assert [v.kind for v in verdict.violations] == ["premature_terminate"]
    assert result.ended.outcome is Outcome.SOLVED


async def test_without_a_gold_answer_the_policy_accepts_or_gives_up() -> None:
    accepted, _, _ = session([STEP1, FINAL], gold=None)
    ended = (await accepted.run()).ended
    assert (ended.stop_reason, ended.outcome, ended.final_answer) == (
        StopReason.ANSWER_ACCEPTED,
        Outcome.UNVERIFIED,
        "12",
    )
    quit_ = "Step 1: There are 3 pens.\nCheck: I cannot go on.\nACTION: terminate"
    given_up, _, _ = session([quit_], gold=None)
    ended = (await given_up.run()).ended
    assert (ended.stop_reason, ended.outcome) == (StopReason.CRITIC_TERMINATED, Outcome.FAILED)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (SessionLimits(max_turns=3), StopReason.MAX_TURNS),
        (SessionLimits(max_depth=2), StopReason.MAX_DEPTH),
        (SessionLimits(max_tokens=30), StopReason.MAX_TOKENS),
    ],
)
async def test_limits_stop_a_session_that_never_verifies(
    limits: SessionLimits, reason: StopReason
) -> None:
    step = "Step {n}: Guess again.\nCheck: this might help.\nACTION: continue"
    replies = [step.format(n=n) for n in range(1, 20)]
    pc, _, _ = session(replies, limits=limits)
    ended = (await pc.run()).ended
    assert (ended.stop_reason, ended.outcome) == (reason, Outcome.FAILED)


# -- resume ----------------------------------------------------------------------------------

_PROBLEM = re.compile(r"Problem (\d+) \((\w+)\)")
SELF_KINDS = ("plain", "reflect", "backtrack", "wrongfinal", "garbled", "doubt", "stuck")


def fake_self_policy(messages: Sequence[LLMMessage]) -> str:
    """A self-critiquing policy that answers from the messages alone (see SELF_KINDS)."""
    start = max(i for i, m in enumerate(messages) if str(m.content).startswith("Problem:"))
    k, kind = _PROBLEM.search(str(messages[start].content)).groups()  # type: ignore[union-attr]
    k = int(k)
    n = int(re.findall(r"Step (\d+)", str(messages[-1].content))[-1])
    tries = sum(
        isinstance(m, AssistantMessage) and str(m.content).startswith(f"Step {n}:")
        for m in messages[start:]
    )
    final = (
        f"Step {n}: {k} + {k} = {2 * k}, so \\boxed{{{2 * k}}}.\nCheck: adds up.\nACTION: terminate"
    )
    if kind == "stuck":
        return f"Step {n}: Guess {tries}: \\boxed{{{900 + tries}}}.\nCheck: ok.\nACTION: terminate"
    if n == 1:
        action = "maybe" if kind == "garbled" else "continue"
        return f"Step 1: We add {k} and {k}.\nCheck: that is the task.\nACTION: {action}"
    if tries == 0 and kind == "reflect" and n == 2:
        return f"Step 2: {k} + {k} = {2 * k + 1}.\nCheck: the sum is off by one.\nACTION: reflect"
    if tries == 0 and kind == "backtrack" and n == 2:
        return f"Step 2: Double {k} wrongly.\nCheck: fine.\nACTION: continue"
    if tries == 0 and kind == "backtrack" and n == 3:
        return f"Step 3: That is {2 * k + 2}.\nCheck: step 2 went wrong.\nACTION: backtrack 1"
    if tries == 0 and kind == "wrongfinal" and n == 2:
        return f"Step 2: So \\boxed{{{2 * k + 1}}}.\nCheck: done.\nACTION: terminate"
    if tries == 0 and kind == "doubt" and n == 2:
        return f"Step 2: So \\boxed{{{2 * k + 1}}}.\nCheck: that is too big.\nACTION: reflect"
    return final


def agents() -> dict[str, Any]:
    return {
        "policy": PolicyAgent(FunctionChatCompletionClient(fake_self_policy)),
        "critic": CriticAgent(ScriptedChatCompletionClient([]), mode="generate"),
    }


def full_session(kind: str, gold: str | None = "2") -> list[SessionEvent]:
    pc = ProposeCritiqueSession(
        problem_text(1, kind), gold_answer=gold, limits=SessionLimits(max_turns=5), **agents()
    )
    return asyncio.run(pc.run()).events


def tree_record(tree_json: str) -> dict[str, Any]:
    record = json.loads(tree_json)
    for node in record["nodes"]:
        node.pop("elapsed")
    return record


@pytest.mark.parametrize(("kind", "gold"), [(k, "2") for k in SELF_KINDS] + [("reflect", None)])
def test_restoring_any_prefix_continues_into_the_same_session(kind: str, gold: str | None) -> None:
    reference = full_session(kind, gold)
    expected = [comparable(e) for e in reference]
    tree = tree_record(ProposeCritiqueSession.restore(reference, **agents()).tree.to_json())
    for cut in range(1, len(reference)):
        pc = ProposeCritiqueSession.restore(reference[:cut], **agents())
        emitted: list[SessionEvent] = []
        result = asyncio.run(pc.run(emitted.append))
        assert [comparable(e) for e in result.events] == expected, f"cut after {cut} events"
        assert emitted == result.events[cut:]  # nothing logged twice
        assert tree_record(result.tree.to_json()) == tree


def test_the_reference_sessions_end_as_designed() -> None:
    ended = {kind: full_session(kind)[-1] for kind in SELF_KINDS}
    outcomes = {kind: e.outcome for kind, e in ended.items()}  # type: ignore[union-attr]
    assert outcomes == {k: Outcome.SOLVED for k in SELF_KINDS if k != "stuck"} | {
        "stuck": Outcome.FAILED
    }
    assert ended["backtrack"].backtracks == 1  # type: ignore[union-attr]
    assert ended["garbled"].violations == 1  # type: ignore[union-attr]


def test_logs_that_are_not_a_propose_critique_prefix_are_refused() -> None:
    events = full_session("wrongfinal")
    posed, step, check, verified = events[0], events[4], events[5], events[6]
    assert isinstance(posed, ProblemPosed) and isinstance(verified, VerifierChecked)
    debate_log = [posed.model_copy(update={"strategy": "debate"})]
    with pytest.raises(RestoreError, match="a 'debate' session, not 'propose-critique'"):
        ProposeCritiqueSession.restore(debate_log, **agents())
    with pytest.raises(RestoreError, match=r"verifier_result on node \d+ before its check"):
        ProposeCritiqueSession.restore([*events[:5], verified], **agents())
    with pytest.raises(RestoreError, match="policy_step before the final answer was verified"):
        ProposeCritiqueSession.restore([*events[:6], step], **agents())
    assert isinstance(check, CriticVerdictGiven)
    assert isinstance(DebateSession.restore(events[:4], **agents()), DebateSession)


# -- the runner ------------------------------------------------------------------------------


def test_synth_runs_the_strategy_over_a_dataset(tmp_path: Path) -> None:
    assert strategy_session("propose-critique") is ProposeCritiqueSession
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect", "wrongfinal"])
    options = SynthesisOptions(
        policy="function:test_propose_critique:fake_self_policy",
        critic="function:test_runner:fake_critic",
        critic_mode="generate",
        strategy="propose-critique",
        concurrency=2,
        limits=SessionLimits(max_turns=6),
    )

    def run() -> Any:
        runner = SynthesisRunner(options)
        return asyncio.run(runner.run(tmp_path / "run", problems))

    report = run()
    assert (report.strategy, report.ran, report.solved, report.failed) == (
        "propose-critique",
        3,
        3,
        0,
    )
    run_dir = RunDirectory(tmp_path / "run")
    summaries = {s.session_id: s for s in run_dir.summaries()}
    assert sorted(summaries) == sorted(p.session_id for p in problems)
    for problem in problems:
        log = read_event_log(run_dir.session_dir(problem.session_id) / "events.jsonl")
        posed = log.events[0]
        assert isinstance(posed, ProblemPosed) and posed.strategy == "propose-critique"
        assert isinstance(log.events[-1], SessionEnded)
        transcript = (run_dir.session_dir(problem.session_id) / "transcript.md").read_text()
        assert transcript.strip().endswith(f"\\boxed{{{problem.answer}}}.")
    by_kind = {p.problem.split("(")[1].split(")")[0]: summaries[p.session_id] for p in problems}
    assert {kind: s.reflections for kind, s in by_kind.items()} == {
        "plain": 0,
        "reflect": 1,
        "wrongfinal": 1,
    }
    again = run()  # a finished run is left alone
    assert (again.ran, again.skipped) == (0, 3)


# -- the real model --------------------------------------------------------------------------


@pytest.mark.embedded
async def test_a_short_session_on_the_embedded_model() -> None:
    from journey.agents.backends import ClientPool

    pool = ClientPool()
    try:
        client = pool.get("embedded")
        load = getattr(client, "load", None)
        if load is not None:
            await load()
        pc = ProposeCritiqueSession(
            "What is 6 * 7?",
            gold_answer="42",
            policy=PolicyAgent(client),
            critic=CriticAgent(client, mode="generate"),
            limits=SessionLimits(max_turns=3),
        )
        result = await pc.run()
    finally:
        await pool.close()
    ended = result.ended
    steps = [e for e in result.events if e.type == "policy_step"]
    checks = of_type(result, CriticVerdictGiven)
    assert 1 <= len(steps) <= 3 and len(checks) == len(steps)
    assert ended.stop_reason in (StopReason.VERIFIED_ANSWER, StopReason.MAX_TURNS)
    assert all(check.usage.total == 0 for check in checks)
