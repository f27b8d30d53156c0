"""Tolerant, honest parsing of policy and critic replies."""

from __future__ import annotations

import pytest

from journey.protocols import (
    Backtrack,
    Continue,
    LabelSource,
    ParsedStep,
    ParsedVerdict,
    Reflect,
    StepVerdict,
    Terminate,
    parse_critic_reply,
    parse_policy_reply,
)
from journey.protocols.parsing import MAX_FALLBACK_REASON_CHARS, MAX_STEP_CHARS


def kinds(parsed: ParsedStep | ParsedVerdict) -> set[str]:
    return {violation.kind for violation in parsed.violations}


def violation(parsed: ParsedStep | ParsedVerdict, kind: str) -> str:
    """The detail of the one violation of `kind`; fails when there is not exactly one."""
    (found,) = [v for v in parsed.violations if v.kind == kind]
    return found.detail


# ---------------------------------------------------------------------------------------
# Policy replies
# ---------------------------------------------------------------------------------------

# (id, reply, expected step, content, final answer, violation kinds)
POLICY_REPLIES = [
    (
        "well formed",
        "Step 2: Subtract 3 from both sides.",
        2,
        "Subtract 3 from both sides.",
        None,
        set(),
    ),
    ("bold label", "**Step 2:** x = 4", 2, "x = 4", None, set()),
    ("bold number, colon outside", "**Step 2**: x = 4", 2, "x = 4", None, set()),
    ("heading label", "### Step 2: Solve\nx = 4", 2, "Solve\nx = 4", None, set()),
    ("label with period", "Step 2. x = 4", 2, "x = 4", None, set()),
    ("label alone on its line", "Step 2\nx = 4", 2, "x = 4", None, set()),
    ("lower case label", "step 2: x = 4", 2, "x = 4", None, set()),
    ("bare number", "2. x = 4", 2, "x = 4", None, set()),
    ("bare number with paren", "2) x = 4", 2, "x = 4", None, set()),
    ("boxed answer", r"Step 3: So x = \boxed{4}.", 3, r"So x = \boxed{4}.", "4", set()),
    ("role label and end token", "Assistant: Step 1: x = 1<|im_end|>", 1, "x = 1", None, set()),
    (
        "chat template around the reply",
        "<|im_start|>assistant\nStep 1: x = 1<|im_end|>\n<|im_start|>user\nWrite Step 2.",
        1,
        "x = 1",
        None,
        set(),
    ),
    (
        "text after eot token dropped",
        "Step 1: y = 2<|eot_id|>Step 2: y = 3",
        1,
        "y = 2",
        None,
        set(),
    ),
    ("model starts the user's turn", "Step 2: x = 4\nUser: thanks", 2, "x = 4", None, set()),
    (
        "missing label",
        "We subtract 3 from both sides.",
        2,
        "We subtract 3 from both sides.",
        None,
        {"missing_step_label"},
    ),
    ("wrong number", "Step 5: x = 4", 3, "x = 4", None, {"wrong_step_number"}),
    ("lead-in dropped", "Sure! Here it is.\nStep 2: x = 4", 2, "x = 4", None, {"text_before_step"}),
    ("two steps", "Step 2: x = 4\nStep 3: y = 5", 2, "x = 4", None, {"multiple_steps"}),
    (
        "three steps, the last with the answer",
        "Step 1: Let x be the number.\nStep 2: Then 2x = 8.\nStep 3: So x = \\boxed{4}.",
        1,
        "Let x be the number.",
        None,
        {"multiple_steps"},
    ),
    (
        "three steps with wrong numbers",
        "Step 4: a\n**Step 5:** b\nStep 6: c",
        2,
        "a",
        None,
        {"multiple_steps", "wrong_step_number"},
    ),
    (
        "bare numbers counting on split, a sub-list does not",
        "3. Two cases:\n1. x > 0\n2. x < 0\n4. Next step",
        3,
        "Two cases:\n1. x > 0\n2. x < 0",
        None,
        {"multiple_steps"},
    ),
    (
        "sub-list under a Step label stays",
        "Step 3: Cases:\n1. a\n2. b",
        3,
        "Cases:\n1. a\n2. b",
        None,
        set(),
    ),
    (
        "decimal is not a label",
        "2.5 is half of 5.",
        2,
        "2.5 is half of 5.",
        None,
        {"missing_step_label"},
    ),
    (
        "mid-line mention is not a label",
        "Step 2: as in Step 1: x = 2",
        2,
        "as in Step 1: x = 2",
        None,
        set(),
    ),
    (
        "unicode",
        "Step 1: 1/2 = 0.5 → ∑ ✓ 答案是 \\boxed{½}",
        1,
        "1/2 = 0.5 → ∑ ✓ 答案是 \\boxed{½}",
        "½",
        set(),
    ),
    (
        "final answer phrase",
        "Step 4: The final answer is 12.",
        4,
        "The final answer is 12.",
        "12",
        set(),
    ),
]


@pytest.mark.parametrize(
    ("reply", "expected_step", "content", "answer", "violation_kinds"),
    [case[1:] for case in POLICY_REPLIES],
    ids=[case[0] for case in POLICY_REPLIES],
)
def test_policy_reply_table(
    reply: str, expected_step: int, content: str, answer: str | None, violation_kinds: set[str]
) -> None:
    step = parse_policy_reply(reply, expected_step)
    assert step.content == content
    assert step.final_answer == answer
    assert kinds(step) == violation_kinds
    assert step.usable
    assert all(v.repaired for v in step.violations)


UNUSABLE_REPLIES = [
    ("empty", "", "empty_reply"),
    ("only whitespace", " \n\t  \n", "empty_reply"),
    ("only special tokens", "<|im_end|>", "empty_reply"),
    ("only an end token and whitespace", "  <|endoftext|>  \n", "empty_reply"),
    ("label and nothing else", "Step 3:", "empty_step"),
    ("bold label and nothing else", "**Step 3:**  ", "empty_step"),
]


@pytest.mark.parametrize(
    ("reply", "kind"), [c[1:] for c in UNUSABLE_REPLIES], ids=[c[0] for c in UNUSABLE_REPLIES]
)
def test_unusable_policy_replies_are_not_repaired(reply: str, kind: str) -> None:
    step = parse_policy_reply(reply, 3)
    assert step.content == ""
    assert not step.usable
    assert step.final_answer is None
    assert kind in kinds(step)
    assert not next(v for v in step.violations if v.kind == kind).repaired


def test_multiple_steps_keeps_the_first_and_names_the_dropped_answer() -> None:
    reply = "Step 1: Let x be the number.\nStep 2: Then 2x = 8.\nStep 3: So x = \\boxed{4}."
    step = parse_policy_reply(reply, 1)
    assert step.final_answer is None  # the answer was in a step nobody reviewed
    detail = violation(step, "multiple_steps")
    assert "3 steps" in detail
    assert "'4'" in detail


def test_multiple_steps_keeps_the_first_steps_own_answer() -> None:
    step = parse_policy_reply("Step 2: x = \\boxed{4}\nStep 3: check: 4 + 4 = 8", 2)
    assert step.content == "x = \\boxed{4}"
    assert step.final_answer == "4"
    assert "dropped" not in violation(step, "multiple_steps")


def test_wrong_step_number_detail_names_both_numbers() -> None:
    detail = violation(parse_policy_reply("Step 5: x", 3), "wrong_step_number")
    assert "5" in detail
    assert "3" in detail


def test_a_10k_character_step_is_cut_at_a_word() -> None:
    reply = "Step 2: " + "word " * 2000
    step = parse_policy_reply(reply, 2)
    assert 0 < len(step.content) <= MAX_STEP_CHARS
    assert step.content.endswith("word")
    assert kinds(step) == {"step_too_long"}
    assert str(len(("word " * 2000).strip())) in violation(step, "step_too_long")


def test_a_10k_character_unbroken_reply_is_cut_hard() -> None:
    step = parse_policy_reply("x" * 10_000, 4)
    assert step.content == "x" * MAX_STEP_CHARS
    assert kinds(step) == {"missing_step_label", "step_too_long"}


def test_an_answer_past_the_cut_is_not_read() -> None:
    step = parse_policy_reply("Step 1: " + "a " * 1500 + "\\boxed{9}", 1)
    assert step.final_answer is None
    assert "step_too_long" in kinds(step)


def test_a_step_of_exactly_the_limit_is_kept_whole() -> None:
    content = "y" * MAX_STEP_CHARS
    step = parse_policy_reply(f"Step 1: {content}", 1)
    assert step.content == content
    assert step.violations == ()


@pytest.mark.parametrize(
    "garbage",
    [
        "}{][)(\\\\\\boxed{",
        "\x00\x01\x02 binary \ufffd\ufffd",
        "Step : no number",
        "Step 99999999999999999999: overflow",
        "*" * 500,
        "<|im_start|><|im_start|><|im_start|>",
    ],
)
def test_garbage_never_raises(garbage: str) -> None:
    step = parse_policy_reply(garbage, 1)
    assert isinstance(step.content, str)
    assert len(step.content) <= MAX_STEP_CHARS
    assert step.usable == bool(step.content)


def test_parsed_step_is_frozen() -> None:
    step = parse_policy_reply("Step 1: x", 1)
    with pytest.raises(AttributeError):
        step.content = "y"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Critic replies
# ---------------------------------------------------------------------------------------

CURRENT = 4  # the step under review in the table below

# (id, reply, verdict, action, violation kinds)
CRITIC_REPLIES: list[tuple[str, str, StepVerdict, object, set[str]]] = [
    (
        "the asked-for form",
        "VERDICT: correct\nACTION: continue\nREASON: The arithmetic checks out.",
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "lower case",
        "verdict: incorrect\naction: reflect\nreason: 3 + 4 is 7.",
        StepVerdict.INCORRECT,
        Reflect(critique="3 + 4 is 7."),
        set(),
    ),
    (
        "markdown bold, colon inside",
        "**VERDICT:** Incorrect\n**ACTION:** backtrack 2\n**REASON:** The sign flipped in step 2.",
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="The sign flipped in step 2."),
        set(),
    ),
    (
        "markdown bold, colon outside",
        "**Verdict**: correct\n**Action**: continue\n**Reason**: fine",
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "dash separators",
        "Verdict - incorrect\nAction - reflect\nReason - wrong sign",
        StepVerdict.INCORRECT,
        Reflect(critique="wrong sign"),
        set(),
    ),
    (
        "all on one line",
        "VERDICT: incorrect ACTION: backtrack 1 REASON: x is 3, not 4.",
        StepVerdict.INCORRECT,
        Backtrack(to_step=1, critique="x is 3, not 4."),
        set(),
    ),
    (
        "backtrack to step N",
        "VERDICT: incorrect\nACTION: backtrack to step 3\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=3, critique="r"),
        set(),
    ),
    (
        "BACKTRACK(N)",
        "Verdict: INCORRECT\nAction: BACKTRACK(2)\nReason: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="r"),
        set(),
    ),
    (
        "backtrack to the beginning",
        "VERDICT: incorrect\nACTION: backtrack to the beginning\nREASON: wrong approach",
        StepVerdict.INCORRECT,
        Backtrack(to_step=0, critique="wrong approach"),
        set(),
    ),
    (
        "go back to step N as the action",
        "VERDICT: incorrect\nACTION: go back to step 1\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=1, critique="r"),
        set(),
    ),
    (
        "terminate with an answer",
        "VERDICT: correct\nACTION: terminate: 42\nREASON: The answer is right.",
        StepVerdict.CORRECT,
        Terminate(answer="42", reason="The answer is right."),
        set(),
    ),
    (
        "terminate with a boxed answer in parentheses",
        "VERDICT: correct\nACTION: terminate (answer: $\\boxed{\\frac{1}{2}}$)\nREASON: done",
        StepVerdict.CORRECT,
        Terminate(answer="\\frac{1}{2}", reason="done"),
        set(),
    ),
    (
        "terminate without an answer",
        "VERDICT: correct\nACTION: terminate\nREASON: The final answer is verified.",
        StepVerdict.CORRECT,
        Terminate(reason="The final answer is verified."),
        set(),
    ),
    (
        "prose after terminate is not an answer",
        "VERDICT: incorrect\nACTION: terminate: the step is wrong and cannot be fixed\nREASON: r",
        StepVerdict.INCORRECT,
        Terminate(reason="r"),
        set(),
    ),
    (
        "synonym in the action field",
        "VERDICT: correct\nACTION: proceed\nREASON: ok",
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "json object",
        '{"verdict": "incorrect", "action": "backtrack", "to_step": 1, "reason": "bad start"}',
        StepVerdict.INCORRECT,
        Backtrack(to_step=1, critique="bad start"),
        set(),
    ),
    (
        "fenced json after prose",
        'Here is my review.\n```json\n{"judgement": "correct", "next_action": "continue",'
        ' "explanation": "fine"}\n```',
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "json with boolean correct and critique",
        '{"correct": false, "action": "reflect", "critique": "recheck the sum"}',
        StepVerdict.INCORRECT,
        Reflect(critique="recheck the sum"),
        set(),
    ),
    (
        "json with odd key spellings",
        '{"Verdict": "Incorrect", "Next Action": "BACKTRACK", "backtrack_to": "step 2",'
        ' "Reason": "r"}',
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="r"),
        set(),
    ),
    (
        "json with the target in the action string",
        '{"verdict": "incorrect", "action": "backtrack 3", "reason": "r"}',
        StepVerdict.INCORRECT,
        Backtrack(to_step=3, critique="r"),
        set(),
    ),
    (
        "json with a nested action",
        '{"verdict": "incorrect", "action": {"type": "backtrack", "target": 2}, "reason": "r"}',
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="r"),
        set(),
    ),
    (
        "json terminate with a numeric answer",
        '{"verdict": "correct", "action": "terminate", "answer": 42, "reason": "done"}',
        StepVerdict.CORRECT,
        Terminate(answer="42", reason="done"),
        set(),
    ),
    (
        "json with string booleans",
        '{"correct": "yes", "action": "continue"}',
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "half json falls back to the fields inside it",
        '{"verdict": "incorrect", "action": "backtrack", "to_step": 1',
        StepVerdict.INCORRECT,
        Backtrack(to_step=1, critique=""),
        set(),
    ),
    (
        "half json cut inside the action",
        '{"verdict": "incorrect", "action": "backtr',
        StepVerdict.INCORRECT,
        Reflect(critique=""),
        {"missing_action"},
    ),
    (
        "missing backtrack target",
        "VERDICT: incorrect\nACTION: backtrack\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=CURRENT - 1, critique="r"),
        {"missing_backtrack_target"},
    ),
    (
        "backtrack to the current step",
        "VERDICT: incorrect\nACTION: backtrack 4\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=CURRENT - 1, critique="r"),
        {"illegal_backtrack_target"},
    ),
    (
        "backtrack past the current step",
        "VERDICT: incorrect\nACTION: backtrack to step 9\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=CURRENT - 1, critique="r"),
        {"illegal_backtrack_target"},
    ),
    (
        "negative backtrack target",
        "VERDICT: incorrect\nACTION: backtrack -1\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=CURRENT - 1, critique="r"),
        {"illegal_backtrack_target"},
    ),
    (
        "json negative target",
        '{"verdict": "incorrect", "action": "backtrack", "to_step": -2, "reason": "r"}',
        StepVerdict.INCORRECT,
        Backtrack(to_step=CURRENT - 1, critique="r"),
        {"illegal_backtrack_target"},
    ),
    (
        "correct without action",
        "VERDICT: correct\nREASON: fine",
        StepVerdict.CORRECT,
        Continue(),
        {"missing_action"},
    ),
    (
        "incorrect without action",
        "VERDICT: incorrect\nREASON: 2 + 2 is 4",
        StepVerdict.INCORRECT,
        Reflect(critique="2 + 2 is 4"),
        {"missing_action"},
    ),
    (
        "action without verdict",
        "ACTION: backtrack 2\nREASON: r",
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="r"),
        {"missing_verdict"},
    ),
    (
        "terminate without verdict stays unknown",
        "ACTION: terminate: 7",
        StepVerdict.UNKNOWN,
        Terminate(answer="7"),
        {"missing_verdict"},
    ),
    # A stated verdict decides the label; the action never keeps an incorrect step.
    (
        "correct but reflect",
        "VERDICT: correct\nACTION: reflect\nREASON: r",
        StepVerdict.CORRECT,
        Reflect(critique="r"),
        {"inconsistent_verdict"},
    ),
    (
        "correct but backtrack",
        "VERDICT: correct\nACTION: backtrack 1\nREASON: r",
        StepVerdict.CORRECT,
        Backtrack(to_step=1, critique="r"),
        {"inconsistent_verdict"},
    ),
    (
        "incorrect but continue",
        "VERDICT: incorrect\nACTION: continue\nREASON: r",
        StepVerdict.INCORRECT,
        Reflect(critique="r"),
        {"inconsistent_action"},
    ),
    (
        "free text: correct",
        "The step looks correct to me.",
        StepVerdict.CORRECT,
        Continue(),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: a mistake, and the correct value",
        "There is a mistake here. The correct value is 12.",
        StepVerdict.INCORRECT,
        Reflect(critique="There is a mistake here. The correct value is 12."),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: no errors",
        "No errors in this step, the student computed it correctly.",
        StepVerdict.CORRECT,
        Continue(),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: not correct",
        "This is not correct.",
        StepVerdict.INCORRECT,
        Reflect(critique="This is not correct."),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: right triangle is no verdict",
        "The step is wrong: it is a right triangle.",
        StepVerdict.INCORRECT,
        Reflect(critique="The step is wrong: it is a right triangle."),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: go back to step N",
        "The step is wrong. Go back to step 2.",
        StepVerdict.INCORRECT,
        Backtrack(to_step=2, critique="The step is wrong. Go back to step 2."),
        {"inferred_verdict", "inferred_action"},
    ),
    (
        "free text: one action word",
        "Correct. Continue.",
        StepVerdict.CORRECT,
        Continue(),
        {"inferred_verdict", "inferred_action"},
    ),
    (
        "free text: a negated action word is not chosen",
        "Wrong: do not continue from here.",
        StepVerdict.INCORRECT,
        Reflect(critique="Wrong: do not continue from here."),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "free text: two action words are no choice",
        "Wrong. Reflect on it, then continue.",
        StepVerdict.INCORRECT,
        Reflect(critique="Wrong. Reflect on it, then continue."),
        {"inferred_verdict", "missing_action"},
    ),
    (
        "json list is read as free text",
        '["correct", "continue"]',
        StepVerdict.CORRECT,
        Continue(),
        {"inferred_verdict", "inferred_action"},
    ),
    (
        "role label and chat tokens",
        "<|im_start|>assistant\nCritic: VERDICT: correct\nACTION: continue\nREASON: ok<|im_end|>",
        StepVerdict.CORRECT,
        Continue(),
        set(),
    ),
    (
        "unicode reason",
        "VERDICT: incorrect\nACTION: reflect\nREASON: √16 = 4, not −4 ✗",
        StepVerdict.INCORRECT,
        Reflect(critique="√16 = 4, not −4 ✗"),
        set(),
    ),
]


@pytest.mark.parametrize(
    ("reply", "verdict", "action", "violation_kinds"),
    [case[1:] for case in CRITIC_REPLIES],
    ids=[case[0] for case in CRITIC_REPLIES],
)
def test_critic_reply_table(
    reply: str, verdict: StepVerdict, action: object, violation_kinds: set[str]
) -> None:
    parsed = parse_critic_reply(reply, current_step=CURRENT)
    assert parsed.verdict is verdict
    assert parsed.action == action
    assert kinds(parsed) == violation_kinds
    assert all(v.repaired for v in parsed.violations)


UNPARSEABLE = [
    ("empty", ""),
    ("only whitespace", "  \n\t "),
    ("garbage", "asdf qwerty zxcv 1234 !!!"),
    ("json with wrong types", '{"verdict": 42, "action": null, "reason": ["x"]}'),
    ("broken braces", "{{{{ }}} ][ {"),
    (
        "the prompt's template copied back",
        "VERDICT: correct or incorrect\nACTION: continue, reflect, backtrack <step number>, "
        "or terminate\nREASON: one short sentence",
    ),
    ("only special tokens", "<|im_end|><|endoftext|>"),
    ("a question back", "Could you show me the problem again?"),
]


@pytest.mark.parametrize("reply", [c[1] for c in UNPARSEABLE], ids=[c[0] for c in UNPARSEABLE])
def test_unparseable_critic_replies(reply: str) -> None:
    parsed = parse_critic_reply(reply, current_step=3)
    assert parsed.verdict is StepVerdict.UNKNOWN
    assert parsed.action is None
    assert kinds(parsed) == {"unparseable_verdict"}
    assert not parsed.violations[0].repaired


def test_reason_falls_back_to_the_rest_trimmed() -> None:
    reply = "VERDICT: incorrect\n" + "The sum is off by one. " * 40
    parsed = parse_critic_reply(reply, current_step=2)
    assert parsed.reason.startswith("The sum is off by one.")
    assert "VERDICT" not in parsed.reason
    assert len(parsed.reason) <= MAX_FALLBACK_REASON_CHARS + 1
    assert parsed.reason.endswith("…")
    assert parsed.action == Reflect(critique=parsed.reason)


def test_reason_field_runs_over_lines_until_the_next_field() -> None:
    reply = "REASON: The sign is wrong.\nIt should be minus.\nVERDICT: incorrect\nACTION: reflect"
    parsed = parse_critic_reply(reply, current_step=2)
    assert parsed.reason == "The sign is wrong. It should be minus."
    assert parsed.violations == ()


def test_reason_excludes_the_json_object() -> None:
    reply = 'Looks fine.\n```json\n{"verdict": "correct", "action": "continue"}\n```'
    parsed = parse_critic_reply(reply, current_step=2)
    assert parsed.reason == "Looks fine."


def test_a_10k_character_critic_reply() -> None:
    reply = "VERDICT: incorrect\nACTION: backtrack 1\nREASON: " + "blah " * 2000
    parsed = parse_critic_reply(reply, current_step=3)
    assert parsed.action == Backtrack(to_step=1, critique=parsed.reason)
    assert parsed.reason.endswith("…")
    assert len(parsed.reason) < 1100


def test_a_10k_character_rambling_reply_is_read_from_free_text() -> None:
    reply = "Hmm, let me think. " * 500 + "In the end the step is wrong."
    parsed = parse_critic_reply(reply, current_step=3)
    assert parsed.verdict is StepVerdict.INCORRECT
    assert kinds(parsed) == {"inferred_verdict", "missing_action"}
    assert len(parsed.reason) <= MAX_FALLBACK_REASON_CHARS + 1


def test_backtrack_from_step_one_goes_to_the_problem() -> None:
    parsed = parse_critic_reply("VERDICT: incorrect\nACTION: backtrack", current_step=1)
    assert parsed.action == Backtrack(to_step=0)
    assert "missing_backtrack_target" in kinds(parsed)


def test_illegal_target_detail_quotes_target_and_step() -> None:
    parsed = parse_critic_reply("VERDICT: incorrect\nACTION: backtrack 7", current_step=3)
    detail = violation(parsed, "illegal_backtrack_target")
    assert "7" in detail
    assert "3" in detail


def test_inconsistent_verdict_detail_names_the_pair() -> None:
    parsed = parse_critic_reply("VERDICT: correct\nACTION: reflect", current_step=3)
    detail = violation(parsed, "inconsistent_verdict")
    assert "correct" in detail
    assert "reflect" in detail


def test_first_json_object_with_known_keys_is_used() -> None:
    reply = 'Example: {"x": 1}. Mine: {"verdict": "incorrect", "action": "reflect"}'
    parsed = parse_critic_reply(reply, current_step=3)
    assert parsed.verdict is StepVerdict.INCORRECT
    assert isinstance(parsed.action, Reflect)


def test_parsed_verdict_round_trips_through_the_event_model() -> None:
    from journey.protocols import CriticVerdictGiven, event_from_json, event_to_json

    parsed = parse_critic_reply("VERDICT: incorrect\nACTION: backtrack 7", current_step=3)
    assert parsed.action is not None
    event = CriticVerdictGiven(
        session_id="s",
        turn=3,
        time=1.0,
        node_id=3,
        verdict=parsed.verdict,
        reason=parsed.reason,
        action=parsed.action,
        violations=list(parsed.violations),
    )
    assert event_from_json(event_to_json(event)) == event


def test_inferred_verdict_detail_quotes_the_deciding_word() -> None:
    parsed = parse_critic_reply("Hmm. I see an error in the sign.", current_step=2)
    assert parsed.verdict is StepVerdict.INCORRECT
    assert "'error'" in violation(parsed, "inferred_verdict")


@pytest.mark.parametrize(
    "reply",
    [
        "VERDICT: unknown\nACTION: continue\nREASON: No claim to check.",
        "VERDICT: Uncertain\nACTION: continue\nREASON: the step looks correct but I can't verify",
        "**Verdict:** cannot tell\n**Action:** continue",
        "VERDICT: not sure\nACTION: reflect\nREASON: Please show the arithmetic.",
        '{"verdict": "unknown", "action": "continue", "reason": "nothing is computed"}',
    ],
)
def test_a_verdict_stated_as_unknown_stays_unknown_whatever_the_action(reply: str) -> None:
    # Read from the action (continue: correct), such a step would enter the shortcut set
    # as accepted although the critic said it could not judge it.
    parsed = parse_critic_reply(reply, current_step=CURRENT)
    assert (parsed.verdict, parsed.source) == (StepVerdict.UNKNOWN, LabelSource.NONE)
    assert parsed.action is not None


def test_a_verdict_that_only_mentions_unknowns_is_still_read() -> None:
    parsed = parse_critic_reply(
        "VERDICT: correct, the unknown x is 4\nACTION: continue", current_step=CURRENT
    )
    assert (parsed.verdict, parsed.source) == (StepVerdict.CORRECT, LabelSource.CRITIC)
