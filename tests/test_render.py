"""The renderer: each event type, the tree and the summary, as plain 80-column text."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, RenderableType

from journey.protocols import (
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    LabelScoring,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    ProtocolViolation,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    Terminate,
    TokenUsage,
    VerifierChecked,
)
from journey.sessions.tree import ReasoningTree
from journey.view.render import (
    SessionRenderer,
    action_badge,
    render_session_summary,
    render_tree,
    verdict_text,
)

SID = "s-1"
PROBLEM = "What is 6 * 7? Answer with a single integer."


def _console() -> Console:
    return Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)


def _text(renderable: RenderableType) -> str:
    console = _console()
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in out.splitlines())
    return out


def _session() -> list[SessionEvent]:
    """A short debate: one step accepted, one backtracked, then a verified answer."""
    return [
        ProblemPosed(
            session_id=SID,
            turn=0,
            time=0.0,
            problem=PROBLEM,
            gold_answer="42",
            models={"policy": "scripted:policy", "critic": "scripted:critic"},
        ),
        PolicyStepProposed(
            session_id=SID,
            turn=1,
            time=0.1,
            node_id=1,
            parent_id=0,
            step_number=1,
            content="6 * 7 is six sevens.",
            raw="STEP: 6 * 7 is six sevens.",
        ),
        CriticVerdictGiven(
            session_id=SID,
            turn=1,
            time=0.2,
            node_id=1,
            verdict=StepVerdict.CORRECT,
            reason="A fine start.",
            action=Continue(),
        ),
        ActionApplied(
            session_id=SID,
            turn=1,
            time=0.2,
            node_id=1,
            action=Continue(),
            cursor_id=1,
            source=Role.CRITIC,
        ),
        PolicyStepProposed(
            session_id=SID,
            turn=2,
            time=0.3,
            node_id=2,
            parent_id=1,
            step_number=2,
            content="Six sevens are 48.",
            raw="Six sevens are 48.",
            violations=[
                ProtocolViolation(kind="missing_label", detail="no STEP: label", repaired=True)
            ],
        ),
        CriticVerdictGiven(
            session_id=SID,
            turn=2,
            time=0.4,
            node_id=2,
            verdict=StepVerdict.INCORRECT,
            reason="7 * 6 is not 48.",
            action=Backtrack(to_step=1, critique="Recount the sevens."),
            label_scores={"continue": -4.5, "backtrack": -0.1, "reflect": -2.25, "terminate": -9},
        ),
        ActionApplied(
            session_id=SID,
            turn=2,
            time=0.4,
            node_id=2,
            action=Backtrack(to_step=1),
            cursor_id=1,
            source=Role.CRITIC,
            note="step 2 abandoned",
        ),
        PolicyStepProposed(
            session_id=SID,
            turn=3,
            time=0.5,
            node_id=3,
            parent_id=1,
            step_number=2,
            content="Six sevens are 42.",
            raw="STEP: Six sevens are 42.\nFINAL ANSWER: 42",
            final_answer="42",
            usage=TokenUsage(prompt_tokens=120, completion_tokens=14),
            latency=0.8,
        ),
        VerifierChecked(
            session_id=SID, turn=3, time=0.6, node_id=3, predicted="42", gold="42", correct=True
        ),
        ActionApplied(
            session_id=SID,
            turn=3,
            time=0.6,
            node_id=3,
            action=Terminate(answer="42"),
            cursor_id=3,
            source=Role.VERIFIER,
        ),
        SessionEnded(
            session_id=SID,
            turn=3,
            time=0.7,
            stop_reason=StopReason.VERIFIED_ANSWER,
            outcome=Outcome.SOLVED,
            final_answer="42",
            final_node_id=3,
            usage={
                Role.POLICY: TokenUsage(prompt_tokens=1234, completion_tokens=56),
                Role.CRITIC: TokenUsage(prompt_tokens=987, completion_tokens=65),
            },
            violations=1,
            backtracks=1,
        ),
    ]


def _tree() -> ReasoningTree:
    tree = ReasoningTree(PROBLEM, gold_answer="42")
    s1 = tree.add_step("6 * 7 is six sevens.")
    tree.judge(s1.id, StepVerdict.CORRECT, "fine")
    s2 = tree.add_step("Six sevens are 48.")
    tree.judge(s2.id, StepVerdict.INCORRECT, "no")
    tree.backtrack(1)
    s3 = tree.add_step("Six sevens are 42.", final_answer="42")
    tree.record_verification(s3.id, correct=True)
    return tree


# -- small pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Continue(), "CONTINUE"),
        (Reflect(), "REFLECT"),
        (Backtrack(to_step=2), "BACKTRACK → step 2"),
        (Terminate(), "TERMINATE"),
    ],
)
def test_action_badge_names_the_action(action: object, words: str) -> None:
    assert action_badge(action).plain.strip() == words  # type: ignore[arg-type]


def test_verdict_text_carries_a_symbol() -> None:
    assert verdict_text(StepVerdict.CORRECT).plain == "✓ correct"
    assert verdict_text(StepVerdict.INCORRECT).plain == "✗ incorrect"
    assert verdict_text(StepVerdict.UNKNOWN).plain == "? unknown"


# -- events ---------------------------------------------------------------------------------


def test_problem_panel() -> None:
    out = _text(SessionRenderer(_console()).renderable(_session()[0]))
    assert "Problem" in out
    assert PROBLEM in out
    assert "gold answer: 42" in out
    assert "policy: scripted:policy" in out
    assert "critic: scripted:critic" in out


def test_problem_without_gold_answer() -> None:
    event = ProblemPosed(session_id=SID, turn=0, time=0.0, problem="Is [x] odd?")
    out = _text(SessionRenderer(_console()).renderable(event))
    assert "no gold answer: the critic decides" in out
    assert "Is [x] odd?" in out  # model text is never read as markup


def test_policy_panel() -> None:
    events = _session()
    renderer = SessionRenderer(_console())
    out = _text(renderer.renderable(events[4]))
    assert "Policy · turn 2 · step 2" in out
    assert "Six sevens are 48." in out
    assert "protocol violations: missing_label (repaired)" in out
    assert "final answer" not in out

    final = _text(renderer.renderable(events[7]))
    assert "final answer: 42" in final
    assert "FINAL ANSWER: 42" not in final  # raw reply hidden by default


def test_policy_panel_with_raw() -> None:
    out = _text(SessionRenderer(_console(), show_raw=True).renderable(_session()[7]))
    assert "raw reply" in out
    assert "FINAL ANSWER: 42" in out


def test_critic_panel() -> None:
    out = _text(SessionRenderer(_console()).renderable(_session()[5]))
    assert "Critic" in out
    assert "✗ incorrect" in out
    assert "BACKTRACK → step 1" in out
    assert "7 * 6 is not 48." in out
    assert "critique: Recount the sevens." in out
    assert "(scored) backtrack -0.10 · reflect -2.25 · continue -4.50" in out
    assert "terminate" not in out
    assert "reward" not in out  # a debate's verdict has none


def test_a_beam_verdict_shows_its_reward_apart_from_the_label_scores() -> None:
    verdict = _session()[5]
    assert isinstance(verdict, CriticVerdictGiven)
    out = _text(SessionRenderer(_console()).renderable(verdict.model_copy(update={"reward": 0.25})))
    assert "reward 0.250" in out
    assert "(scored) backtrack -0.10 · reflect -2.25 · continue -4.50" in out
    served = verdict.model_copy(update={"label_scoring": LabelScoring.FIRST_TOKEN})
    assert "(first token) backtrack -0.10" in _text(SessionRenderer(_console()).renderable(served))


def test_verifier_line() -> None:
    renderer = SessionRenderer(_console())
    assert _text(renderer.renderable(_session()[8])).strip() == "Verifier: 42 vs gold 42 ✓ correct"
    wrong = VerifierChecked(
        session_id=SID, turn=1, time=0.1, node_id=1, predicted="48", gold="42", correct=False
    )
    assert _text(renderer.renderable(wrong)).strip() == "Verifier: 48 vs gold 42 ✗ incorrect"


def test_action_applied() -> None:
    events = _session()
    renderer = SessionRenderer(_console())
    assert renderer.renderable(events[3]) is None  # the critic's continue is already shown
    out = _text(renderer.renderable(events[6]))
    assert "→ backtrack to step 1 (critic)" in out
    assert "step 2 abandoned" in out
    assert "→ terminate with answer 42 (verifier)" in _text(renderer.renderable(events[9]))


def test_session_summary() -> None:
    out = _text(render_session_summary(_session()[-1]))
    assert "✓ solved" in out
    assert "verified answer" in out
    assert "tokens · policy" in out
    assert "1,234 prompt / 56 completion" in out
    assert "tokens · critic" in out
    assert "987 prompt / 65 completion" in out
    assert "tokens · verifier" not in out
    assert "error" not in out


def test_session_summary_with_error() -> None:
    ended = SessionEnded(
        session_id=SID,
        turn=2,
        time=1.0,
        stop_reason=StopReason.MODEL_ERROR,
        outcome=Outcome.ERROR,
        error="critic backend: 503 after 3 retries",
    )
    out = _text(render_session_summary(ended))
    assert "✗ error" in out
    assert "model error" in out
    assert "critic backend: 503 after 3 retries" in out
    assert "—" in out  # no final answer


def test_show_prints_the_whole_session() -> None:
    console = _console()
    renderer = SessionRenderer(console)
    for event in _session():
        renderer.show(event)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in out.splitlines())
    order = [
        "Problem",
        "turn 1 · step 1",
        "turn 2 · step 2",
        "BACKTRACK",
        "turn 3 · step 2",
        "Verifier",
        "Session summary",
    ]
    positions = [out.index(word) for word in order]
    assert positions == sorted(positions)


# -- tree -----------------------------------------------------------------------------------


def test_tree_shows_branches_and_final_path() -> None:
    lines = _text(render_tree(_tree())).splitlines()
    assert lines[0] == PROBLEM
    assert lines[1].endswith("▶ 1. 6 * 7 is six sevens.")
    assert lines[2].endswith("2. Six sevens are 48. (abandoned)")
    assert "▶" not in lines[2]
    assert lines[3].endswith("▶ 2. Six sevens are 42. ⇒ 42 ✓")
    # children in visit order, the abandoned step drawn first
    assert lines.index(lines[2]) < lines.index(lines[3])


def test_tree_marks_the_given_final_node() -> None:
    tree = _tree()
    out = _text(render_tree(tree, final_node_id=2))
    assert "▶ 2. Six sevens are 48. (abandoned)" in out
    assert "▶ 2. Six sevens are 42." not in out


def test_tree_shortens_long_steps_and_shows_wrong_answers() -> None:
    tree = ReasoningTree("x " * 100)
    node = tree.add_step("word " * 40, final_answer="7")
    tree.record_verification(node.id, correct=False)
    out = _text(render_tree(tree))
    assert "…" in out
    assert "⇒ 7 ✗" in out
    assert out == _text(render_tree(tree))  # deterministic
