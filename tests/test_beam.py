"""Beam search: what the beam keeps, how it stops, what it logs, and resuming it.

The fake policy answers from a script keyed by the path it is asked to extend; the
k-th time the same conversation is asked, it gives the k-th reply for that path, so
sibling samples differ and a resumed session asks exactly what the first one did.
The fake critic judges a step by its words: "good" is correct, "bad" incorrect.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import AssistantMessage, LLMMessage
from rich.console import Console
from test_runner import comparable
from typer.testing import CliRunner

from journey.agents import CriticAgent, PolicyAgent, step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError
from journey.exports import ExportOptions, export_runs
from journey.exports.export import card_path
from journey.longthought.tree_walk import TreeWalkWriter
from journey.problems import load_problems
from journey.protocols import (
    ActionApplied,
    CriticVerdictGiven,
    PolicyStepProposed,
    ProblemPosed,
    SessionEnded,
    SessionEvent,
    VerifierChecked,
)
from journey.runs import RunDirectory, SynthesisOptions, SynthesisRunner
from journey.runs.stats import read_run
from journey.sessions import DebateSession, NodeLabel, RestoreError, SessionLimits
from journey.sessions.beam import BeamSearchSession
from journey.sessions.beam_select import (
    BeamOptions,
    rank_candidates,
    step_reward,
    walk_trials_from_config,
)
from journey.sessions.strategies import strategy_session
from journey.view.replay import ReplayOptions, replay_session, tree_from_events

PROBLEM = "What is 3 + 4?"

Script = Mapping[tuple[str, ...], Sequence[str]]

SOLVED: Script = {
    (): ["good A.", "bad B.", "good C."],
    ("good A.",): ["good A2.", "good  a2.", "So the answer is \\boxed{8}."],
    ("good C.",): ["good C2.", "The answer is \\boxed{7}.", "bad C3."],
}
"""Round 1 keeps A and C and prunes B; round 2 drops a duplicate, prunes a wrong answer
and finds the right one under C."""


def _path(messages: Sequence[LLMMessage]) -> tuple[str, ...]:
    start = max(i for i, m in enumerate(messages) if str(m.content).startswith("Problem:"))
    steps = [str(m.content) for m in messages[start:] if isinstance(m, AssistantMessage)]
    return tuple(s.split(": ", 1)[1] for s in steps)


class ScriptedPolicy:
    """Replies from a script by path; the k-th identical request gets the k-th reply."""

    def __init__(self, script: Script, default: str = "good step {n}.") -> None:
        self.script = script
        self.default = default
        self.asked: Counter[str] = Counter()

    def __call__(self, messages: Sequence[LLMMessage]) -> str:
        path = _path(messages)
        key = "\x00".join(str(m.content) for m in messages)
        k = self.asked[key]
        self.asked[key] += 1
        replies = self.script.get(path)
        n = len(path) + 1
        text = replies[k % len(replies)] if replies else self.default.format(n=n, k=k)
        return f"Step {n}: {text}"


def _newest(messages: Sequence[LLMMessage]) -> str:
    return step_under_judgement(messages)


def word_critic(messages: Sequence[LLMMessage]) -> str:
    newest = _newest(messages)
    if "good" in newest or "boxed" in newest:
        return "VERDICT: correct\nACTION: continue\nREASON: Fine."
    return "VERDICT: incorrect\nACTION: reflect\nREASON: You made an error."


def unsure_critic(messages: Sequence[LLMMessage]) -> str:
    """As `word_critic`, but a step that says "unsure" gets no verdict (unknown)."""
    if "unsure" in _newest(messages):
        return "REASON: I cannot tell."
    return word_critic(messages)


def agents(script: Script, *, critic: Any = word_critic, **policy: Any) -> dict[str, Any]:
    return {
        "policy": PolicyAgent(FunctionChatCompletionClient(ScriptedPolicy(script, **policy))),
        "critic": CriticAgent(FunctionChatCompletionClient(critic), mode="generate"),
    }


def beam(
    script: Script,
    *,
    gold: str | None = "7",
    limits: SessionLimits | None = None,
    session_agents: dict[str, Any] | None = None,
    **config: Any,
) -> BeamSearchSession:
    settings = {"beam_width": 3, "beam_size": 2} | config
    return BeamSearchSession(
        PROBLEM,
        gold_answer=gold,
        limits=limits or SessionLimits(max_depth=4),
        config=settings,
        **(session_agents or agents(script)),
    )


def timeless(tree: Any) -> dict[str, Any]:
    """A tree's record without what the clock decides."""
    record = json.loads(tree.to_json())
    for node in record["nodes"]:
        node.pop("elapsed")
    return record


def of_type(events: Sequence[SessionEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# -- the search ------------------------------------------------------------------------------


def test_the_beam_keeps_the_best_k_and_a_verified_answer_solves_it() -> None:
    result = asyncio.run(beam(SOLVED).run())
    events = result.events
    posed, ended = events[0], result.ended
    assert isinstance(posed, ProblemPosed) and posed.strategy == "beam"
    assert posed.config["beam_width"] == 3 and posed.config["beam_size"] == 2
    assert posed.config["max_depth"] == 4 and posed.config["beam_max_expansions"] == 16
    assert posed.config["beam_full_tree"] is False and posed.config["beam_walk_trials"] == 2
    steps = of_type(events, PolicyStepProposed)
    assert [(s.node_id, s.parent_id, s.content) for s in steps] == [
        (1, 0, "good A."),
        (2, 0, "bad B."),
        (3, 0, "good C."),
        (4, 1, "good A2."),
        (5, 1, "So the answer is \\boxed{8}."),
        (6, 3, "good C2."),
        (7, 3, "The answer is \\boxed{7}."),
        (8, 3, "bad C3."),
    ]
    assert [s.turn for s in steps] == [1, 1, 1, 2, 2, 3, 3, 3]
    # The dropped duplicate is one violation on its expansion's first child.
    assert [v.kind for v in steps[3].violations] == ["duplicate_sibling"]
    assert ended.violations == 1
    applied = {e.node_id: e for e in of_type(events, ActionApplied)}
    assert {n: (a.action.action, a.note.split(":")[0]) for n, a in applied.items()} == {
        1: ("continue", "kept"),
        2: ("backtrack", "pruned"),
        3: ("continue", "kept"),
        7: ("terminate", "verified answer"),
    }
    assert applied[1].note == "kept: beam rank 1 of 2 judged correct, reward 1.000"
    assert applied[2].note == "pruned: judged incorrect, reward 0.000"
    verified = {e.node_id: e.correct for e in of_type(events, VerifierChecked)}
    assert verified == {5: False, 7: True}
    assert (ended.outcome, ended.stop_reason, ended.final_node_id) == (
        "solved",
        "verified_answer",
        7,
    )
    assert ended.final_answer == "7" and ended.backtracks == 1 and ended.turn == 3
    tree = result.tree
    assert [n.id for n in tree.path(7)] == [0, 3, 7] and tree.cursor == 7
    assert all(tree[n].label is NodeLabel.CORRECT for n in (3, 7))
    assert tree[5].label is NodeLabel.INCORRECT and tree[5].verified is False
    assert tree[2].abandoned and tree[2].label is NodeLabel.INCORRECT
    # Replay rebuilds the very same tree from the log.
    assert tree_from_events(events).to_json() == tree.to_json()


def test_a_sample_that_restates_its_path_is_dropped_so_no_step_stands_twice() -> None:
    """Under A the policy, asked once (no re-asks), restates A twice (case aside): both
    samples are dropped, counted, and the verified path holds A once."""
    script: Script = {
        (): ["good A.", "bad B.", "bad B2."],
        ("good A.",): ["good A.", "The answer is \\boxed{7}.", "Good  a."],
    }
    policy = PolicyAgent(FunctionChatCompletionClient(ScriptedPolicy(script)), max_reasks=0)
    critic = CriticAgent(FunctionChatCompletionClient(word_critic), mode="generate")
    result = asyncio.run(beam(script, session_agents={"policy": policy, "critic": critic}).run())
    steps = of_type(result.events, PolicyStepProposed)
    assert [(s.parent_id, s.content) for s in steps] == [
        (0, "good A."),
        (0, "bad B."),
        (0, "bad B2."),
        (1, "The answer is \\boxed{7}."),
    ]
    assert [v.kind for v in steps[3].violations] == ["restated_step", "restated_step"]
    assert result.ended.outcome == "solved" and result.ended.violations == 2


@pytest.mark.parametrize(("size", "kept_steps"), [(1, [3]), (3, [1, 3])])
def test_rewards_come_from_label_scores_when_the_critic_scores(
    size: int, kept_steps: list[int]
) -> None:
    logprobs = {"good": (-0.1, -3.0), "fine": (-1.0, -1.0), "bad": (-3.0, -0.1)}

    def scores(messages: Sequence[LLMMessage], labels: Sequence[str]) -> dict[str, float]:
        word = next(w for w in logprobs if w in _newest(messages))
        keep, drop = logprobs[word]
        return {label: keep if label == "continue" else drop for label in labels}

    critic_client = FunctionChatCompletionClient(lambda _: "Because.", label_scores=scores)
    script: Script = {(): ["fine one.", "bad two.", "good three."]}
    session = beam(
        script,
        session_agents={
            "policy": PolicyAgent(FunctionChatCompletionClient(ScriptedPolicy(script))),
            "critic": CriticAgent(critic_client, mode="score"),
        },
        beam_size=size,
        beam_max_expansions=1,
    )
    events = asyncio.run(session.run()).events
    rewards = {e.node_id: e.reward for e in of_type(events, CriticVerdictGiven)}
    # At step 1 the critic scores continue and reflect: reward = softmax mass of continue.
    sigmoid = 1 / (1 + math.exp(-2.9))
    assert rewards == pytest.approx({1: 0.5, 2: 1 - sigmoid, 3: sigmoid}, abs=1e-6)
    # Step 2 has a reward but the critic chose reflect (verdict incorrect): never kept,
    # even with room in the beam.
    kept = [e.node_id for e in of_type(events, ActionApplied) if e.action.action == "continue"]
    assert kept == kept_steps and session.beam == sorted(kept_steps, key=lambda n: -rewards[n])
    assert events[-1].stop_reason == "max_turns"


def test_step_reward_and_ranking() -> None:
    assert step_reward("correct", None) == 1.0
    assert step_reward("incorrect", {}) == 0.0
    assert step_reward("unknown", {"reward": 0.3}) == 0.5
    scored = {"continue": 0.0, "reflect": 0.0, "backtrack": 0.0, "terminate": 0.0}
    assert step_reward("incorrect", scored) == 0.5
    ranked = rank_candidates({4: 0.2, 2: 0.9, 3: 0.9, 1: 0.1}, 2)
    assert [(r.node_id, r.rank, r.kept) for r in ranked] == [
        (2, 1, True),
        (3, 2, True),
        (4, 3, False),
        (1, 4, False),
    ]


def test_fewer_than_k_correct_steps_keep_only_those() -> None:
    script: Script = {(): ["good A.", "bad B.", "unsure C."]}
    agents_ = agents(script, critic=unsure_critic)
    session = beam(script, session_agents=agents_, beam_size=2, beam_max_expansions=1)
    events = asyncio.run(session.run()).events
    rewards = {e.node_id: e.reward for e in of_type(events, CriticVerdictGiven)}
    assert rewards == {1: 1.0, 2: 0.0, 3: 0.5}
    applied = {e.node_id: (e.action.action, e.note) for e in of_type(events, ActionApplied)}
    # K is 2 but only one step is judged correct: the 0-reward and the unknown step are
    # pruned, not kept to fill the beam.
    assert applied == {
        1: ("continue", "kept: beam rank 1 of 1 judged correct, reward 1.000"),
        2: ("backtrack", "pruned: judged incorrect, reward 0.000"),
        3: ("backtrack", "pruned: verdict unknown, reward 0.500"),
    }
    assert session.beam == [1]
    assert session.tree[2].abandoned and session.tree[3].abandoned


def test_a_round_with_no_correct_step_expands_the_same_beam_again() -> None:
    script: Script = {(): ["bad 1.", "bad 2.", "good 3.", "\\boxed{7}."]}
    result = asyncio.run(beam(script, beam_width=2).run())
    steps = of_type(result.events, PolicyStepProposed)
    assert [(s.node_id, s.parent_id, s.turn) for s in steps] == [
        (1, 0, 1),
        (2, 0, 1),
        (3, 0, 2),
        (4, 0, 2),
    ]
    applied = [(e.node_id, e.action.action) for e in of_type(result.events, ActionApplied)]
    assert applied == [(1, "backtrack"), (2, "backtrack"), (4, "terminate")]
    ended = result.ended
    assert (ended.outcome, ended.final_node_id, ended.backtracks) == ("solved", 4, 2)


def test_a_round_of_only_wrong_answers_expands_the_same_beam_again() -> None:
    script: Script = {(): ["\\boxed{1}.", "\\boxed{2}.", "\\boxed{3}.", "\\boxed{7}."]}
    result = asyncio.run(beam(script, beam_width=2).run())
    steps = of_type(result.events, PolicyStepProposed)
    assert [(s.node_id, s.parent_id, s.turn) for s in steps] == [
        (1, 0, 1),
        (2, 0, 1),
        (3, 0, 2),
        (4, 0, 2),
    ]
    applied = [(e.node_id, e.action.action) for e in of_type(result.events, ActionApplied)]
    assert applied == [(1, "reflect"), (2, "reflect"), (4, "terminate")]
    assert result.ended.outcome == "solved" and result.ended.reflections == 2


def test_without_a_gold_answer_an_answer_the_critic_accepts_ends_it() -> None:
    script: Script = {(): ["bad start.", "good start."], ("good start.",): ["\\boxed{7}."]}
    result = asyncio.run(beam(script, gold=None, beam_width=2).run())
    assert not of_type(result.events, VerifierChecked)
    ended = result.ended
    assert (ended.outcome, ended.stop_reason, ended.final_answer) == (
        "unverified",
        "answer_accepted",
        "7",
    )
    assert ended.final_node_id == 3 and result.tree[3].verified is None


FULL: Script = {
    **SOLVED,
    ("good A.", "good A2."): ["Then \\boxed{7}.", "good A3.", "bad A4."],
}
"""SOLVED, then a second, deeper right answer under A2."""

ENDS: Script = {
    (): ["good A.", "good C."],
    ("good A.",): ["\\boxed{7}.", "\\boxed{8}."],
    ("good C.",): ["\\boxed{9}.", "\\boxed{6}."],
    ("good C.", "\\boxed{9}."): ["\\boxed{7}!"],
    ("good C.", "\\boxed{6}."): ["\\boxed{5}."],
}
"""Every leaf ends in an answer: A's right away, C's once its second expansion finds 7.

With width 2, C is asked the same two replies each time it is expanded, as a
deterministic model would be (so a restored session asks what the first one did); the
second time both repeat a rejected answer, and the policy, asked again (the rejected
reply now on the path), answers 7 and 5.
"""

VARIED = {"default": "good step {n}, take {k}."}
"""Steps the script does not name differ between samples."""


def test_the_full_tree_grows_past_the_first_verified_answer_to_depth_d() -> None:
    session = beam(FULL, session_agents=agents(FULL, **VARIED), beam_full_tree=True)
    result = asyncio.run(session.run())
    events, ended, tree = result.events, result.ended, result.tree
    assert isinstance(events[0], ProblemPosed) and events[0].config["beam_full_tree"] is True
    assert max(n.depth for n in tree) == 4
    verified = {e.node_id: e.correct for e in of_type(events, VerifierChecked)}
    assert verified == {5: False, 7: True, 9: True}
    applied = {e.node_id: e for e in of_type(events, ActionApplied)}
    assert applied[7].action.action == "terminate" and applied[9].action.action == "terminate"
    assert applied[7].note == "verified answer: a finished leaf, the tree grows on"
    assert not tree[7].abandoned and not tree[9].abandoned
    # Round 3 keeps at most K = 2 correct steps: A3 and C2's first child.
    kept_3 = [n for n, a in applied.items() if tree[n].depth == 3 and a.action.action == "continue"]
    assert [tree[n].text for n in kept_3] == ["good A3.", "good step 3, take 0."]
    # Solved, on the shallowest verified answer: the one the tree walk ends at.
    assert (ended.outcome, ended.stop_reason, ended.final_node_id) == ("solved", "max_depth", 7)
    assert ended.final_answer == "7" and TreeWalkWriter.correct_leaf(tree) == 7
    assert ended.turn == 7  # 1 + 2 + 2 + 2 expansions
    assert tree_from_events(events).to_json() == tree.to_json()


def test_the_full_tree_ends_when_every_leaf_has_ended() -> None:
    session = beam(ENDS, beam_width=2, beam_full_tree=True, limits=SessionLimits(max_depth=9))
    result = asyncio.run(session.run())
    steps = of_type(result.events, PolicyStepProposed)
    # Round 2 keeps nothing: A found 7 and is done, C (only wrong answers) goes again.
    assert [(s.node_id, s.parent_id, s.turn) for s in steps] == [
        (1, 0, 1),
        (2, 0, 1),
        (3, 1, 2),
        (4, 1, 2),
        (5, 2, 3),
        (6, 2, 3),
        (7, 2, 4),
        (8, 2, 4),
    ]
    verified = {e.node_id: e.correct for e in of_type(result.events, VerifierChecked)}
    assert verified == {3: True, 4: False, 5: False, 6: False, 7: True, 8: False}
    ended = result.ended
    assert (ended.outcome, ended.stop_reason, ended.final_node_id, ended.turn) == (
        "solved",
        "verified_answer",
        3,
        4,
    )
    assert ended.reflections == 4


def test_a_full_tree_without_a_verified_answer_fails() -> None:
    limits = SessionLimits(max_depth=2)
    session = beam({}, session_agents=agents({}, **VARIED), limits=limits, beam_full_tree=True)
    ended = asyncio.run(session.run()).ended
    assert (ended.outcome, ended.stop_reason, ended.final_node_id) == ("failed", "max_depth", None)


def test_without_a_gold_answer_the_full_tree_ends_on_the_shallowest_accepted_answer() -> None:
    script: Script = {
        (): ["good A.", "bad B."],
        ("good A.",): ["good A2.", "\\boxed{7}."],
        ("good A.", "good A2."): ["\\boxed{8}.", "bad A3."],
    }
    session = beam(script, gold=None, beam_width=2, beam_full_tree=True)
    result = asyncio.run(session.run())
    applied = {e.node_id: e.action.action for e in of_type(result.events, ActionApplied)}
    assert applied[4] == "terminate" and applied[5] == "terminate"
    ended = result.ended
    assert (ended.outcome, ended.stop_reason, ended.final_node_id, ended.final_answer) == (
        "unverified",
        "answer_accepted",
        4,
        "7",
    )


def test_the_walks_trials_per_node_are_recorded_and_change_the_long_thought() -> None:
    thoughts = {}
    for trials in (0, 1, 2):
        result = asyncio.run(beam(SOLVED, beam_walk_trials=trials).run())
        posed = result.events[0]
        assert isinstance(posed, ProblemPosed) and posed.config["beam_walk_trials"] == trials
        writer = TreeWalkWriter(trials_per_node=walk_trials_from_config(posed.config))
        thoughts[trials] = writer.write(result.tree)
    assert thoughts[0] == TreeWalkWriter().shortcut(result.tree)
    assert len(set(thoughts.values())) == 3
    assert thoughts[2] == TreeWalkWriter().write(result.tree)  # the default is 2


@pytest.mark.parametrize(
    ("limits", "config", "reason", "expansions"),
    [
        (SessionLimits(max_depth=2), {}, "max_depth", 3),
        (SessionLimits(max_depth=9), {"beam_max_expansions": 4}, "max_turns", 4),
        (SessionLimits(max_depth=9, max_tokens=60), {}, "max_tokens", 3),
    ],
)
def test_limits_stop_the_search(
    limits: SessionLimits, config: dict[str, Any], reason: str, expansions: int
) -> None:
    varied = agents({}, default="good step {n}, take {k}.")
    result = asyncio.run(beam({}, limits=limits, session_agents=varied, **config).run())
    ended = result.ended
    assert (ended.stop_reason, ended.outcome, ended.turn) == (reason, "failed", expansions)
    depth = max(n.depth for n in result.tree)
    assert depth <= limits.max_depth


def test_each_expansion_samples_width_children_at_the_beam_temperature() -> None:
    policy = ScriptedPolicy({}, default="good step {n}, take {k}.")
    client = FunctionChatCompletionClient(policy)
    agents_ = {"policy": PolicyAgent(client), "critic": agents({})["critic"]}
    limits = SessionLimits(max_depth=2)
    result = asyncio.run(beam({}, limits=limits, session_agents=agents_, beam_width=4).run())
    per_parent = Counter(s.parent_id for s in of_type(result.events, PolicyStepProposed))
    assert per_parent == {0: 4, 1: 4, 2: 4}
    assert len(client.requests) == 12


def test_a_policy_backend_failure_ends_the_session_as_an_error() -> None:
    def explode(messages: Sequence[LLMMessage]) -> str:
        raise RuntimeError("backend down")

    agents_ = {"policy": PolicyAgent(FunctionChatCompletionClient(explode)), **agents({})}
    agents_["policy"] = PolicyAgent(FunctionChatCompletionClient(explode))
    ended = asyncio.run(beam({}, session_agents=agents_).run()).ended
    assert (ended.outcome, ended.stop_reason) == ("error", "model_error")
    assert ended.error == "RuntimeError: backend down"


def test_bad_beam_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="beam width must be an integer of at least 1, got 0"):
        beam({}, beam_width=0)
    with pytest.raises(ConfigError, match="beam temperature must be >= 0"):
        BeamOptions(temperature=-1.0)
    with pytest.raises(ConfigError, match="beam full_tree must be true or false, got 'yes'"):
        beam({}, beam_full_tree="yes")
    with pytest.raises(ConfigError, match="walk_trials must be an integer of at least 0, got -1"):
        beam({}, beam_walk_trials=-1)
    assert strategy_session("beam") is BeamSearchSession


# -- resuming --------------------------------------------------------------------------------

DEEP: Script = {
    (): ["good A.", "bad B.", "good C."],
    ("good A.",): ["good A2.", "good A2.", "bad A3."],
    ("good C.",): ["bad C2.", "good C3.", "\\boxed{9}."],
    ("good A.", "good A2."): ["\\boxed{7}.", "good A4."],
}


@pytest.mark.parametrize(
    ("script", "config", "policy"),
    [
        (SOLVED, {}, {}),
        (DEEP, {}, {}),
        (ENDS, {"beam_width": 2, "beam_full_tree": True}, {}),
        (FULL, {"beam_full_tree": True}, VARIED),
    ],
    ids=["solved", "deep", "full-tree-ends", "full-tree-depth"],
)
def test_restoring_any_prefix_continues_into_the_same_session(
    script: Script, config: dict[str, Any], policy: dict[str, str]
) -> None:
    session = beam(script, session_agents=agents(script, **policy), **config)
    reference = asyncio.run(session.run()).events
    assert isinstance(reference[-1], SessionEnded) and reference[-1].outcome == "solved"
    expected = [comparable(e) for e in reference]
    for cut in range(1, len(reference)):
        restored = BeamSearchSession.restore(reference[:cut], **agents(script, **policy))
        emitted: list[SessionEvent] = []
        result = asyncio.run(restored.run(emitted.append))
        assert [comparable(e) for e in result.events] == expected, f"cut after {cut} events"
        assert emitted == result.events[cut:]
        assert timeless(result.tree) == timeless(tree_from_events(reference))
    done = BeamSearchSession.restore(reference, **agents(script))
    assert done.finished
    with pytest.raises(RuntimeError, match="already ended"):
        asyncio.run(done.run())


def test_a_log_that_is_not_a_beam_prefix_is_refused() -> None:
    reference = asyncio.run(beam(SOLVED).run()).events
    with pytest.raises(RestoreError, match="must start with problem_posed"):
        BeamSearchSession.restore(reference[1:], **agents(SOLVED))
    deeper = next(e for e in reference if isinstance(e, PolicyStepProposed) and e.parent_id)
    with pytest.raises(RestoreError, match="hangs from node 1, which is not in the beam"):
        BeamSearchSession.restore([reference[0], deeper], **agents(SOLVED))
    verdict = next(e for e in reference if isinstance(e, CriticVerdictGiven))
    with pytest.raises(RestoreError, match="critic_verdict on node 1, not a step of this round"):
        BeamSearchSession.restore([reference[0], verdict], **agents(SOLVED))
    debate = DebateSession(PROBLEM, gold_answer="7", **agents(SOLVED))
    posed = asyncio.run(debate.run()).events[:1]
    with pytest.raises(RestoreError, match="a 'debate' session, not 'beam'"):
        BeamSearchSession.restore(posed, **agents(SOLVED))


# -- in a synthesis run ----------------------------------------------------------------------


def test_a_synthesis_run_with_the_beam_strategy(tmp_path: Path) -> None:
    lines = [
        {"problem": PROBLEM, "answer": "7"},
        {"problem": "What is 2 + 2?", "answer": "4"},
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    problems = load_problems(path).records
    clients = {
        "policy": FunctionChatCompletionClient(ScriptedPolicy(SOLVED)),
        "critic": FunctionChatCompletionClient(word_critic),
    }
    options = SynthesisOptions(
        strategy="beam",
        policy="function:test_beam:word_critic",
        critic="function:test_beam:word_critic",
        critic_mode="generate",
        limits=SessionLimits(max_depth=3),
    )
    runner = SynthesisRunner(options, clients=clients)
    report = asyncio.run(runner.run(tmp_path / "run", problems))
    assert (report.ran, report.solved, report.failed, report.crashed) == (2, 1, 1, 0)
    run = RunDirectory(tmp_path / "run")
    summaries = {s.session_id: s for s in run.summaries()}
    assert {s.outcome for s in summaries.values()} == {"solved", "failed"}
    for summary in summaries.values():
        log = run.load_events(summary.session_id)
        assert isinstance(log.events[0], ProblemPosed) and log.events[0].strategy == "beam"
        assert tree_from_events(log.events).to_json() == run.load_tree(summary.session_id).to_json()
        # A solved search's long thought is the depth-first walk over its tree, not the
        # order in which the beam happened to sample its steps.
        transcript = (run.session_dir(summary.session_id) / "transcript.md").read_text()
        walked = TreeWalkWriter().write(run.load_tree(summary.session_id))
        if summary.outcome == "solved":
            assert walked is not None and transcript == walked + "\n"
        else:
            assert walked is None and transcript.strip()
        # One long thought: replay and export show what transcript.md holds.
        shown = io.StringIO()
        replay_session(
            read_run(tmp_path / "run"),
            summary.session_id,
            Console(file=shown, width=400),
            ReplayOptions(instant=True, transcript=True),
        )
        at = 0
        for line in filter(None, transcript.strip().splitlines()):  # every line, in order
            at = shown.getvalue().index(line, at) + len(line)
        if summary.outcome == "solved":
            out = tmp_path / "sft.jsonl"
            card = export_runs([tmp_path / "run"], out, ExportOptions(format="sft"))
            [row] = [json.loads(line) for line in out.read_text().splitlines()]
            assert row["completion"][0]["content"] == transcript.strip()
            settings = card.strategy_settings  # the beam as the seed's K, D and trials
            assert settings["beam_size"] == [2] and settings["beam_full_tree"] == [False]
            assert settings["beam_walk_trials"] == [2]
            # Each walk option reaches the writer, and the card says it did.
            # The flags of earlier versions still choose as they did.
            chosen = {
                "reasoned": ["--wrong-turns", "reasoned"],
                "followed": ["--wrong-turns", "followed"],
                "reasoned-flag": ["--reasoned-trials-only"],
                "followed-flag": ["--followed-corrections-only"],
            }
            for name, flags in chosen.items():
                out = tmp_path / f"{name}.jsonl"
                args = ["export", str(tmp_path / "run"), "-o", str(out), *flags]
                exported = CliRunner().invoke(app, args)
                assert exported.exit_code == 0, exported.output
                walked_card = json.loads(card_path(out).read_text())
                assert walked_card["writer"]["wrong_turns"] == name.removesuffix("-flag")
                # The wrong turn left out is counted on the card and printed, never silent.
                assert walked_card["wrong_turns_left_out"] == {"no reason given": 1}
                assert "wrong turns left out" in exported.output
            assert card.wrong_turns_left_out == {}
            refused = {
                "one of all, reasoned, followed, got 'some'": ["--wrong-turns", "some"],
                "--wrong-turns alone": ["--wrong-turns", "all", "--followed-corrections-only"],
            }
            for message, flags in refused.items():
                args = ["export", str(tmp_path / "run"), "-o", str(tmp_path / "no.jsonl")]
                exported = CliRunner().invoke(app, [*args, *flags])
                assert exported.exit_code == 1 and message in str(exported.exception)
                assert not (tmp_path / "no.jsonl").exists()
            reasoned = tmp_path / "reasoned.jsonl"
            [walked_row] = [json.loads(line) for line in reasoned.read_text().splitlines()]
            assert "does not seem right" not in walked_row["completion"][0]["content"]


# -- the real embedded model -----------------------------------------------------------------


@pytest.mark.embedded
def test_a_tiny_beam_search_on_the_embedded_model() -> None:
    from journey.agents.backends.transformers_client import TransformersChatCompletionClient

    client = TransformersChatCompletionClient.embedded(temperature=0.0, max_new_tokens=32)
    session = BeamSearchSession(
        "What is 6 times 7?",
        gold_answer="42",
        policy=PolicyAgent(client, max_tokens=32, max_reasks=0),
        critic=CriticAgent(client, mode="auto", reason_max_tokens=16),
        limits=SessionLimits(max_depth=2, max_tokens=2000),
        config={"beam_width": 2, "beam_size": 2},
    )
    try:
        result = asyncio.run(session.run())
    finally:
        asyncio.run(client.close())
    events, ended = result.events, result.ended
    steps = of_type(events, PolicyStepProposed)
    # At most beam_width steps per expansion (a parent's turn): a round that keeps no step
    # expands the same parents again, so a parent may have more children than the width.
    per_expansion = Counter((s.parent_id, s.turn) for s in steps)
    assert steps and all(n <= 2 for n in per_expansion.values())
    judged = {e.node_id for e in events if isinstance(e, CriticVerdictGiven | VerifierChecked)}
    assert judged == {s.node_id for s in steps}
    for verdict in of_type(events, CriticVerdictGiven):
        assert verdict.label_scores is not None and "reward" not in verdict.label_scores
        assert verdict.reward is not None and 0 <= verdict.reward <= 1
    assert ended.outcome in ("solved", "failed") and max(n.depth for n in result.tree) <= 2
    assert timeless(tree_from_events(events)) == timeless(result.tree)
