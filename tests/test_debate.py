"""The debate engine, driven by scripted models through every path of the protocol."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from autogen_core.models import LLMMessage

from journey.agents import CriticAgent, PolicyAgent, step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient, ScriptedChatCompletionClient
from journey.errors import ConfigError
from journey.longthought import LongThoughtWriter
from journey.protocols import (
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    LabelScoring,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    Reflect,
    Role,
    SessionEnded,
    StepVerdict,
    StopReason,
    Terminate,
    VerifierChecked,
    event_from_json,
    event_to_json,
)
from journey.sessions import DebateSession, NodeLabel, SessionLimits, SessionResult

PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?"
OK = "VERDICT: correct\nACTION: continue\nREASON: The step is right."


def session(
    policy_replies: Sequence[str],
    critic_replies: Sequence[str],
    *,
    gold: str | None = "12",
    limits: SessionLimits | None = None,
    config: dict[str, str] | None = None,
) -> tuple[DebateSession, ScriptedChatCompletionClient, ScriptedChatCompletionClient]:
    policy_client = ScriptedChatCompletionClient(policy_replies)
    critic_client = ScriptedChatCompletionClient(critic_replies)
    debate = DebateSession(
        PROBLEM,
        gold_answer=gold,
        policy=PolicyAgent(policy_client),
        critic=CriticAgent(critic_client, mode="generate"),
        limits=limits,
        models={"policy": "replay:policy", "critic": "replay:critic"},
        config=config,
    )
    return debate, policy_client, critic_client


def kinds(result: SessionResult) -> list[str]:
    return [e.type for e in result.events]


async def test_continue_then_verified_answer_solves_the_problem() -> None:
    debate, _, _ = session(
        ["Step 1: There are 3 pens of 4 sheep.", "Step 2: 3 * 4 = 12, so \\boxed{12}."], [OK]
    )
    result = await debate.run()
    assert kinds(result) == [
        "problem_posed",
        "policy_step",
        "critic_verdict",
        "action_applied",
        "policy_step",
        "verifier_result",
        "action_applied",
        "session_ended",
    ]
    ended = result.ended
    assert ended.outcome is Outcome.SOLVED and ended.stop_reason is StopReason.VERIFIED_ANSWER
    assert ended.final_answer == "12" and ended.final_node_id == 2
    assert [n.label for n in result.tree.current_path()] == [NodeLabel.CORRECT] * 2
    assert ended.usage[Role.POLICY].completion_tokens > 0
    assert ended.usage[Role.CRITIC].completion_tokens > 0
    terminate = result.events[-2]
    assert isinstance(terminate, ActionApplied) and terminate.source is Role.VERIFIER
    assert terminate.action == Terminate(answer="12")


async def test_reflect_rewrites_the_step_as_a_sibling() -> None:
    debate, policy_client, _ = session(
        ["Step 1: 3 + 4 = 7 sheep.", "Step 1: 3 * 4 = 12, so \\boxed{12}."],
        ["VERDICT: incorrect\nACTION: reflect\nREASON: You should multiply, not add."],
    )
    result = await debate.run()
    tree = result.tree
    assert [n.text for n in tree.children(0)] == ["3 + 4 = 7 sheep.", "3 * 4 = 12, so \\boxed{12}."]
    assert tree[1].label is NodeLabel.INCORRECT and tree[1].abandoned
    assert result.ended.reflections == 1 and result.ended.outcome is Outcome.SOLVED
    # The policy saw its failed step and the critique before rewriting it.
    second_request = policy_client.requests[1]
    seen = "\n".join(str(m.content) for m in second_request)
    assert "3 + 4 = 7" in seen and "multiply, not add" in seen


async def test_backtrack_returns_to_an_earlier_step_and_keeps_the_failed_branch() -> None:
    debate, policy_client, _ = session(
        [
            "Step 1: Each pen has 4 sheep.",
            "Step 2: There are 4 pens.",
            "Step 3: 4 * 4 = 16.",
            "Step 2: There are 3 pens, so 3 * 4 = 12 and the answer is \\boxed{12}.",
        ],
        [
            OK,
            OK,
            "VERDICT: incorrect\nACTION: backtrack 1\nREASON: There are 3 pens, not 4.",
        ],
    )
    result = await debate.run()
    tree = result.tree
    assert result.ended.backtracks == 1
    new_step = tree[4]
    assert new_step.parent_id == 1 and new_step.depth == 2
    assert [n.id for n in tree.siblings(new_step.id)] == [2]
    assert tree[2].abandoned and tree[3].abandoned
    applied = [e for e in result.events if isinstance(e, ActionApplied)]
    assert applied[2].action == Backtrack(to_step=1, critique="There are 3 pens, not 4.")
    assert applied[2].cursor_id == 1
    last_prompt = str(policy_client.requests[-1][-1].content)
    assert "Go back to step 1" in last_prompt and "Write Step 2" in last_prompt


def _seen(request: Sequence[LLMMessage]) -> str:
    return "\n".join(str(m.content) for m in request)


PENS_POLICY = [
    "Step 1: Each pen has 4 sheep.",
    "Step 2: 4 + 3 = 7 sheep.",
    "Step 2: 4 * 4 = 16, so \\boxed{16}.",
    "Step 2: 3 * 4 = 12, so \\boxed{12}.",
]
"""A step the critic rejects, a final answer the verifier rejects, then the right one."""
PENS_CRITIC = [OK, "VERDICT: incorrect\nACTION: reflect\nREASON: Multiply the pens by the sheep."]


async def test_a_policy_shown_the_path_sees_the_critique_but_never_the_rejected_step() -> None:
    """policy_context path: what beam shows, plus the newest instruction, so a small model
    has no rejected step to copy; the tree and the events are a debate's all the same."""
    debate, policy_client, _ = session(PENS_POLICY, PENS_CRITIC, config={"policy_context": "path"})
    result = await debate.run()
    assert result.ended.outcome is Outcome.SOLVED and result.ended.reflections == 2
    first, after_critique, after_wrong_answer = policy_client.requests[1:]
    assert "The critic agrees with step 1. Write Step 2." in _seen(first)
    # the critique arrives in the same user turn as the path's last instruction
    assert "4 + 3 = 7" not in _seen(after_critique)
    assert str(after_critique[-1].content).endswith(
        "The critic says step 2 is wrong: Multiply the pens by the sheep.\n"
        "Reconsider it and write Step 2 again, correctly."
    )
    assert "Each pen has 4 sheep." in _seen(after_critique)
    assert [m.type for m in after_critique] == [m.type for m in first]  # turns still alternate
    assert "4 * 4 = 16" not in _seen(after_wrong_answer)
    assert "Your final answer 16 is incorrect" in str(after_wrong_answer[-1].content)
    posed = result.events[0]
    assert isinstance(posed, ProblemPosed) and posed.config["policy_context"] == "path"

    # The same replies shown the whole dialogue: the same tree, the rejected steps in view.
    dialogue, full_client, _ = session(PENS_POLICY, PENS_CRITIC)
    same = await dialogue.run()
    shape = [(n.parent_id, n.text, n.label) for n in result.tree]
    assert [(n.parent_id, n.text, n.label) for n in same.tree] == shape
    assert "4 + 3 = 7" in _seen(full_client.requests[2])

    # A restored session asks with the same view.
    restored = DebateSession.restore(
        result.events[:6],
        policy=PolicyAgent(ScriptedChatCompletionClient(PENS_POLICY[2:])),
        critic=CriticAgent(ScriptedChatCompletionClient([]), mode="generate"),
    )
    assert restored.policy_view.context == "path"
    with pytest.raises(ConfigError, match="unknown policy_context 'story'"):
        DebateSession.check_config({"policy_context": "story"}, SessionLimits())


async def test_a_policy_shown_a_fresh_path_is_asked_as_beam_asks_for_a_child() -> None:
    """policy_context fresh: the critique is not shown either, so a rejected step is asked
    again with the same prompt (and its own seed); the long thought still holds it."""
    debate, policy_client, _ = session(PENS_POLICY, PENS_CRITIC, config={"policy_context": "fresh"})
    result = await debate.run()
    assert result.ended.outcome is Outcome.SOLVED and result.ended.reflections == 2
    first, after_critique, after_wrong_answer = policy_client.requests[1:]
    assert [str(m.content) for m in after_critique] == [str(m.content) for m in first]
    assert [str(m.content) for m in after_wrong_answer] == [str(m.content) for m in first]
    assert "Multiply the pens" not in _seen(after_critique)
    # The long thought is the dialogue's: the wrong turns and the critique are in it.
    transcript = LongThoughtWriter().write(result.events)
    assert "4 + 3 = 7" in transcript and "Multiply the pens by the sheep" in transcript
    posed = result.events[0]
    assert isinstance(posed, ProblemPosed) and posed.config["policy_context"] == "fresh"


async def test_wrong_final_answer_is_fed_back_and_the_debate_goes_on() -> None:
    debate, policy_client, _ = session(
        ["Step 1: 3 + 4 = 7, so \\boxed{7}.", "Step 1: 3 * 4 = 12, so \\boxed{12}."], []
    )
    result = await debate.run()
    checks = [e for e in result.events if isinstance(e, VerifierChecked)]
    assert [(c.predicted, c.correct) for c in checks] == [("7", False), ("12", True)]
    assert result.tree[1].verified is False and result.tree[1].label is NodeLabel.INCORRECT
    assert result.ended.outcome is Outcome.SOLVED and result.ended.reflections == 1
    assert "Your final answer 7 is incorrect" in str(policy_client.requests[1][-1].content)


async def test_turn_limit_ends_the_session_as_failed() -> None:
    debate, _, _ = session(
        [f"Step {i}: still thinking." for i in range(1, 10)],
        [OK] * 9,
        limits=SessionLimits(max_turns=3),
    )
    result = await debate.run()
    ended = result.ended
    assert ended.stop_reason is StopReason.MAX_TURNS and ended.outcome is Outcome.FAILED
    assert sum(isinstance(e, PolicyStepProposed) for e in result.events) == 3
    assert ended.final_answer is None and ended.final_node_id is None


async def test_depth_and_token_limits() -> None:
    deep, _, _ = session(
        [f"Step {i}: more." for i in range(1, 10)], [OK] * 9, limits=SessionLimits(max_depth=2)
    )
    assert (await deep.run()).ended.stop_reason is StopReason.MAX_DEPTH
    costly, _, _ = session(
        ["Step 1: " + "word " * 50, "Step 2: more."], [OK] * 2, limits=SessionLimits(max_tokens=20)
    )
    result = await costly.run()
    assert result.ended.stop_reason is StopReason.MAX_TOKENS
    assert result.ended.turn == 1


async def test_without_gold_the_critic_accepts_the_final_answer() -> None:
    debate, _, _ = session(["Step 1: 3 * 4 = 12, so \\boxed{12}."], [OK], gold=None)
    result = await debate.run()
    assert not any(isinstance(e, VerifierChecked) for e in result.events)
    ended = result.ended
    assert ended.stop_reason is StopReason.ANSWER_ACCEPTED and ended.outcome is Outcome.UNVERIFIED
    assert ended.final_answer == "12"


async def test_without_gold_the_critic_may_give_up() -> None:
    debate, _, _ = session(
        ["Step 1: Hmm."], ["VERDICT: incorrect\nACTION: terminate\nREASON: hopeless"], gold=None
    )
    ended = (await debate.run()).ended
    assert ended.stop_reason is StopReason.CRITIC_TERMINATED and ended.outcome is Outcome.FAILED


async def test_unparseable_critic_is_reasked_then_falls_back_to_continue() -> None:
    debate, _, critic_client = session(
        ["Step 1: 3 pens.", "Step 2: so \\boxed{12}."], ["lorem ipsum", "???"]
    )
    result = await debate.run()
    verdict = next(e for e in result.events if isinstance(e, CriticVerdictGiven))
    assert len(critic_client.requests) == 2  # asked once more
    assert verdict.verdict is StepVerdict.UNKNOWN and verdict.action == Continue()
    kinds_seen = [v.kind for v in verdict.violations]
    assert "fallback_continue" in kinds_seen and len(kinds_seen) >= 3
    assert result.ended.violations == len(verdict.violations)
    assert result.ended.outcome is Outcome.SOLVED


async def test_illegal_backtrack_target_is_repaired_and_recorded() -> None:
    debate, _, _ = session(
        ["Step 1: 3 pens.", "Step 2: 5 sheep.", "Step 2: \\boxed{12}"],
        [OK, "VERDICT: incorrect\nACTION: backtrack 7\nREASON: no"],
    )
    result = await debate.run()
    verdicts = [e for e in result.events if isinstance(e, CriticVerdictGiven)]
    assert verdicts[1].action == Backtrack(to_step=1, critique="no")
    assert any(v.kind == "illegal_backtrack_target" for v in verdicts[1].violations)
    assert result.tree[3].parent_id == 1


async def test_premature_terminate_with_gold_is_read_as_the_verdict() -> None:
    debate, _, _ = session(
        ["Step 1: 3 pens.", "Step 2: \\boxed{12}"],
        ["VERDICT: correct\nACTION: terminate\nREASON: looks done"],
    )
    result = await debate.run()
    verdict = next(e for e in result.events if isinstance(e, CriticVerdictGiven))
    assert verdict.action == Continue()
    assert [v.kind for v in verdict.violations] == ["premature_terminate"]
    assert result.ended.outcome is Outcome.SOLVED


async def test_a_backend_failure_ends_the_session_with_a_recorded_error() -> None:
    debate, _, _ = session(["Step 1: 3 pens."], [OK])  # the policy script runs out on turn 2
    result = await debate.run()
    ended = result.ended
    assert ended.stop_reason is StopReason.MODEL_ERROR and ended.outcome is Outcome.ERROR
    assert ended.error is not None and "ScriptExhaustedError" in ended.error
    assert len(result.tree) == 2  # the finished step is kept


async def test_empty_policy_replies_are_reasked_then_end_the_session() -> None:
    debate, policy_client, _ = session(["", "   ", "Step 1:"], [])
    ended = (await debate.run()).ended
    assert len(policy_client.requests) == 3
    assert ended.stop_reason is StopReason.MODEL_ERROR and "no usable step" in (ended.error or "")


async def test_score_mode_critic_picks_labels_and_backtrack_target() -> None:
    def scores(messages: Sequence[LLMMessage], labels: Sequence[str]) -> dict[str, float]:
        if labels[0] == "0":  # choosing a backtrack target: prefer step 1
            return {label: (0.0 if label == "1" else -5.0) for label in labels}
        bad = "16" in step_under_judgement(messages)
        best = "backtrack" if bad else "continue"
        return {label: (0.0 if label == best else -3.0) for label in labels}

    critic_client = FunctionChatCompletionClient(
        lambda _: "Because of the count.", label_scores=scores
    )
    policy_client = ScriptedChatCompletionClient(
        ["Step 1: 4 sheep per pen.", "Step 2: 4 pens.", "Step 3: 16 sheep.", "Step 2: \\boxed{12}"]
    )
    debate = DebateSession(
        PROBLEM,
        gold_answer="12",
        policy=PolicyAgent(policy_client),
        critic=CriticAgent(critic_client),  # auto: this client scores labels
    )
    result = await debate.run()
    verdicts = [e for e in result.events if isinstance(e, CriticVerdictGiven)]
    assert [v.action.action for v in verdicts] == ["continue", "continue", "backtrack"]
    assert verdicts[2].action == Backtrack(to_step=1, critique="Because of the count.")
    assert verdicts[2].label_scores is not None and set(verdicts[2].label_scores) == {
        "continue",
        "reflect",
        "backtrack",
    }
    assert verdicts[2].verdict is StepVerdict.INCORRECT
    assert all(v.label_scoring is LabelScoring.SEQUENCE for v in verdicts)
    assert result.ended.outcome is Outcome.SOLVED


async def test_stream_yields_the_same_events_as_run() -> None:
    debate, _, _ = session(["Step 1: \\boxed{12}"], [])
    streamed = [event async for event in debate.stream()]
    assert streamed == debate.events
    assert isinstance(streamed[0], ProblemPosed) and isinstance(streamed[-1], SessionEnded)


async def test_every_event_round_trips_through_json() -> None:
    debate, _, _ = session(
        ["Step 1: 3 + 4 = 7, so \\boxed{7}.", "Step 1: 3 pens", "Step 2: \\boxed{12}"],
        ["VERDICT: correct\nACTION: continue\nREASON: ok"],
    )
    result = await debate.run()
    for event in result.events:
        assert event_from_json(event_to_json(event)) == event


def test_limits_are_validated() -> None:
    with pytest.raises(Exception, match="max_turns must be at least 1, got 0"):
        SessionLimits(max_turns=0)


async def test_on_event_sees_events_as_they_happen() -> None:
    debate, _, _ = session(["Step 1: 3 pens", "Step 2: \\boxed{12}"], [OK])
    seen: list[str] = []
    result = await debate.run(lambda event: seen.append(event.type))
    assert seen == kinds(result)
    assert isinstance(result.events[2], CriticVerdictGiven)
    assert result.events[3] == ActionApplied(
        session_id=debate.session_id,
        turn=1,
        time=result.events[3].time,
        node_id=1,
        action=Continue(),
        cursor_id=1,
        source=Role.CRITIC,
    )
    assert Reflect(critique="x").action == "reflect"


async def test_a_step_that_repeats_a_rejected_one_is_asked_again() -> None:
    debate, policy_client, _ = session(
        [
            "Step 1: 3 + 4 = 7 sheep.",
            "Step 1: 3 + 4 = 7 sheep.",  # the same mistake again
            "Step 1: 3 * 4 = 12, so \\boxed{12}.",
        ],
        ["VERDICT: incorrect\nACTION: reflect\nREASON: Multiply."],
    )
    result = await debate.run()
    assert "You already wrote that step" in str(policy_client.requests[2][-1].content)
    steps = [e for e in result.events if isinstance(e, PolicyStepProposed)]
    assert [s.content for s in steps] == ["3 + 4 = 7 sheep.", "3 * 4 = 12, so \\boxed{12}."]
    assert [v.kind for v in steps[1].violations] == ["repeated_step"]
    assert result.ended.outcome is Outcome.SOLVED


class _TemperatureRecorder(ScriptedChatCompletionClient):
    """A scripted client that also records the temperature each request asked for."""

    def __init__(self, replies: Sequence[str]) -> None:
        super().__init__(replies)
        self.temperatures: list[object] = []

    async def create(self, messages, *args, extra_create_args=None, **kwargs):  # type: ignore[no-untyped-def,override]
        self.temperatures.append((extra_create_args or {}).get("temperature"))
        return await super().create(
            messages, *args, extra_create_args=extra_create_args or {}, **kwargs
        )


@pytest.mark.parametrize(
    ("own", "asked"),
    [(0.0, [0.0, 0.0, 0.7]), (None, [None, None, 0.7]), (1.0, [1.0, 1.0, 1.0])],
)
async def test_a_re_ask_after_a_repetition_samples_instead_of_decoding_greedily(
    own: float | None, asked: list[float | None]
) -> None:
    # A greedy policy re-asked with nearly the same dialogue writes the same step again:
    # the re-ask samples at 0.7, never cooler than the turn's own temperature.
    policy_client = _TemperatureRecorder(
        ["Step 1: 3 + 4 = 7 sheep.", "Step 1: 3 + 4 = 7 sheep.", "Step 1: 3 * 4 = \\boxed{12}."]
    )
    debate = DebateSession(
        PROBLEM,
        gold_answer="12",
        policy=PolicyAgent(policy_client, temperature=own),
        critic=CriticAgent(
            ScriptedChatCompletionClient(["VERDICT: incorrect\nACTION: reflect\nREASON: x"]),
            mode="generate",
        ),
    )
    result = await debate.run()
    assert policy_client.temperatures == asked
    assert result.ended.outcome is Outcome.SOLVED


async def test_a_step_that_echoes_the_instruction_is_asked_again() -> None:
    debate, policy_client, _ = session(
        ["Step 1: Write Step 1.", "Step 1: 3 * 4 = 12, so \\boxed{12}."], []
    )
    result = await debate.run()
    steps = [e for e in result.events if isinstance(e, PolicyStepProposed)]
    assert len(steps) == 1 and [v.kind for v in steps[0].violations] == ["echoed_instruction"]
    assert len(policy_client.requests) == 2 and result.ended.outcome is Outcome.SOLVED
