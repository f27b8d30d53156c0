"""The arithmetic rule critic: its claim checker on steps as models write them, its
replies through the critic's own parser, and a debate judged by it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from autogen_core.models import AssistantMessage, LLMMessage

from journey.agents import CriticAgent, StepUnderReview
from journey.agents.backends import FunctionChatCompletionClient
from journey.agents.backends.builtin_backends import load_reply_function
from journey.agents.rule_critics import arithmetic
from journey.problems import load_problems
from journey.protocols import CriticVerdictGiven, StepVerdict
from journey.protocols.arithmetic_claims import check_claims, format_value
from journey.protocols.parsing import parse_critic_reply
from journey.runs import SynthesisOptions, SynthesisRunner, read_event_log
from journey.sessions import SessionLimits

SPEC = "function:journey.agents.rule_critics:arithmetic"

# -- the checker ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ("3 + 4 = 7", [("3 + 4 = 7", True)]),
        ("So 3 + 4 = 8.", [("3 + 4 = 8", False)]),
        # Thinking out loud, in words.
        (
            "Hmm, let me think. 12 times 3 is 36, and 36 minus 4 is 32, so we get 32.",
            [("12 times 3 = 36", True), ("36 minus 4 = 32", True)],
        ),
        ("Then 45 divided by 5 equals 9.", [("45 divided by 5 = 9", True)]),
        # LaTeX, inline and display.
        (r"We get $\frac{3}{4} \times 8 = 6$.", [("((3)/(4)) * 8 = 6", True)]),
        (r"\[ 12 \div 4 = 4 \]", [("12 / 4 = 4", False)]),
        (r"$7 \cdot 6 = \boxed{42}$", [("7 * 6 = 42", True)]),
        # Unicode operators and thousands separators.
        ("1,234 × 2 = 2,468", [("1234 * 2 = 2468", True)]),
        ("9 − 12 = −3 and 8 ÷ 2 = 4", [("9 - 12 = -3", True), ("8 / 2 = 4", True)]),
        (r"1{,}000 + 24 = 1{,}024", [("1000 + 24 = 1024", True)]),
        # A claim spread over a line, and a chain.
        ("The total is 17 + 25\n= 42 apples.", [("17 + 25 = 42", True)]),
        ("(2 + 3) * 4 = 5 * 4 = 21", [("(2 + 3) * 4 = 5 * 4", True), ("5 * 4 = 21", False)]),
        # A running total, read as a reader would.
        ("5 + 3 = 8 - 2 = 6", [("5 + 3 = 8", True), ("8 - 2 = 6", True)]),
        # Rounded decimals, exact fractions, powers, negatives, implicit products.
        ("10 / 3 = 3.33", [("10 / 3 = 3.33", True)]),
        ("10 / 3 = 3.4", [("10 / 3 = 3.4", False)]),
        ("7 / 2 = 3", [("7 / 2 = 3", False)]),
        ("0.1 + 0.2 = 0.3", [("0.1 + 0.2 = 0.3", True)]),
        ("2^10 = 1024 and 2**3 = 8", [("2^10 = 1024", True), ("2^3 = 8", True)]),
        ("-9 / 9 = -1 and 5 - -1 = 6", [("-9 / 9 = -1", True), ("5 - -1 = 6", True)]),
        ("2(3 + 4) = 14", [("2(3 + 4) = 14", True)]),
        # A bullet or a numbered line ends the claim before it.
        ("3 + 4 = 7\n- 7 * 2 = 15", [("3 + 4 = 7", True), ("7 * 2 = 15", False)]),
        ("1. 5 + 9 = 14\n2. 14 + 14 = 28", [("5 + 9 = 14", True), ("14 + 14 = 28", True)]),
        ("**Step 2:** 6 * 7 = 48", [("6 * 7 = 48", False)]),
        # A claim quoted to be denied is not made.
        ("98 * 93 = 8416 is false: 98 * 93 is 9114.", [("98 * 93 = 9114", True)]),
        ("So 6 * 7 = 48 isn't right; 6 * 7 = 42", [("6 * 7 = 42", True)]),
        # Nothing to check: no operator, variables, the problem restated, division by 0.
        ("We have 7 apples and 3 pears.", []),
        ("Let x = 5, so 2x = 10.", []),
        ("Calculate -( 7 + 8 ).", []),
        ("What is 3 + 4? It is 7.", []),
        ("5 / 0 = 0", []),
        ("the answer is 7 = 7", []),
    ],
)
def test_claims_in_steps_as_models_write_them(text: str, claims: list[tuple[str, bool]]) -> None:
    found = check_claims(text)
    assert [(c.text, c.holds) for c in found.claims] == claims


def test_a_false_claim_is_named_with_its_right_value() -> None:
    (claim,) = check_claims("Step 3: 17 + 25 = 43").claims
    assert claim.correction == "17 + 25 = 43 is false: 17 + 25 is 42"
    (reversed_claim,) = check_claims("43 = 17 + 25").claims
    assert reversed_claim.correction == "43 = 17 + 25 is false: 17 + 25 is 42"
    assert claim.left_value == Fraction(42) and claim.right_value == Fraction(43)
    assert [format_value(Fraction(n, d)) for n, d in [(7, 1), (-5, 2), (1, 8), (10, 3)]] == [
        "7",
        "-2.5",
        "0.125",
        "10/3",
    ]


def test_claim_offsets_point_into_the_normalised_text() -> None:
    check = check_claims("First $3 \\times 4 = 13$. Wait, that is wrong.")
    (claim,) = check.false_claims
    assert check.normalised[claim.start : claim.end] == "3 * 4 = 13"
    assert "Wait" in check.normalised[claim.end :]


# -- the critic's replies ---------------------------------------------------------------------


def _judge_messages(steps: Sequence[str], *, problem: str = "Compute it.") -> list[LLMMessage]:
    """The judge prompt the critic agent builds for the last of `steps`."""
    agent = CriticAgent(FunctionChatCompletionClient(arithmetic), mode="generate")
    review = StepUnderReview(
        problem=problem,
        previous_steps=list(steps[:-1]),
        step_number=len(steps),
        text=steps[-1],
    )
    return agent.messages_for(review)


def _reply(steps: Sequence[str]) -> str:
    return arithmetic(_judge_messages(steps))


def test_a_false_claim_is_reflected_with_the_right_value() -> None:
    reply = _reply(["12 * 3 = 36.", "Then 36 - 4 = 31, so 31 cookies are left."])
    assert reply == (
        "VERDICT: incorrect\nACTION: reflect\nREASON: 36 - 4 = 31 is false: 36 - 4 is 32."
    )
    parsed = parse_critic_reply(reply, current_step=2)
    assert parsed.verdict is StepVerdict.INCORRECT and parsed.action is not None
    assert parsed.action.action == "reflect" and parsed.violations == ()


def test_true_claims_continue_and_no_claim_is_unknown() -> None:
    reply = _reply(["Hmm, 7 times 8 is 56, and 56 + 4\n= 60."])
    assert reply.startswith("VERDICT: correct\nACTION: continue\n")
    assert "7 times 8 = 56; 56 + 4 = 60" in reply
    reply = _reply(["12 * 3 = 36.", "Now we subtract the cookies that were eaten."])
    assert reply.startswith("VERDICT: unknown\nACTION: continue\n")
    # The problem's own arithmetic is not the step's.
    reply = arithmetic(_judge_messages(["Let me start."], problem="Is 2 + 2 = 5?"))
    assert reply.startswith("VERDICT: unknown")


def test_a_mistake_made_earlier_is_backtracked_to_where_the_prompt_allows() -> None:
    steps = ["3 * 4 = 12.", "12 + 5 = 18.", "18 - 2 = 15."]
    assert _reply(steps).splitlines()[1] == "ACTION: backtrack 1"
    # Without backtracking in the prompt (a plain chat), the step is rewritten instead.
    messages = [m for m in _judge_messages(steps) if m.type != "SystemMessage"]
    assert arithmetic(messages).splitlines()[1] == "ACTION: reflect"
    # Only the newest step's own mistake: rewrite it.
    assert _reply(["3 * 4 = 12.", "12 + 5 = 18."]).splitlines()[1] == "ACTION: reflect"


def test_the_spec_names_a_sync_function_of_the_messages() -> None:
    assert load_reply_function(SPEC.removeprefix("function:")) is arithmetic
    agent = CriticAgent(FunctionChatCompletionClient(arithmetic), mode="generate")
    review = StepUnderReview(problem="p", previous_steps=[], step_number=1, text="2 + 2 = 5")
    turn = asyncio.run(agent.judge(review))
    assert turn.verdict is StepVerdict.INCORRECT and turn.action.action == "reflect"
    assert turn.reason == "2 + 2 = 5 is false: 2 + 2 is 4."


def test_a_step_nobody_could_check_stays_unknown_through_the_agent() -> None:
    agent = CriticAgent(FunctionChatCompletionClient(arithmetic), mode="generate")
    review = StepUnderReview(problem="p", previous_steps=[], step_number=1, text="Let me think.")
    turn = asyncio.run(agent.judge(review))
    assert turn.verdict is StepVerdict.UNKNOWN


# -- a debate judged by the rule ------------------------------------------------------------

_SUM = re.compile(r"What is (\d+) \+ (\d+) \+ (\d+)\?")


def policy(messages: Sequence[LLMMessage]) -> str:
    """Adds two numbers wrongly at first, rightly when asked again, then the third."""
    posed = next(at for at, m in enumerate(messages) if _SUM.search(str(m.content)))
    a, b, c = (int(x) for x in _SUM.findall(str(messages[posed].content))[-1])
    step = int(re.findall(r"Step (\d+)", str(messages[-1].content))[-1])
    if step >= 2:
        return f"Step 2: {a + b} + {c} = {a + b + c}, so the answer is \\boxed{{{a + b + c}}}."
    tries = sum(
        isinstance(m, AssistantMessage) and str(m.content).startswith("Step 1:")
        for m in messages[posed:]
    )
    return f"Step 1: {a} + {b} = {a + b + (0 if tries else 10)}."


def test_a_debate_judged_by_the_rule_reflects_the_wrong_sum(tmp_path: Path) -> None:
    data = tmp_path / "sums.jsonl"
    triples = [(2, 3, 4), (17, 25, 8)]
    data.write_text(
        "".join(
            json.dumps({"problem": f"What is {a} + {b} + {c}?", "answer": str(a + b + c)}) + "\n"
            for a, b, c in triples
        )
    )
    options = SynthesisOptions(
        policy="function:test_rule_critics:policy",
        critic=SPEC,
        critic_mode="generate",
        concurrency=2,
        limits=SessionLimits(max_turns=6),
    )
    report = asyncio.run(
        SynthesisRunner(options).run(tmp_path / "run", load_problems(data).records)
    )
    assert report.solved == len(triples)
    verdicts = [
        event
        for log in sorted((tmp_path / "run/sessions").glob("*/events.jsonl"))
        for event in read_event_log(log).events
        if isinstance(event, CriticVerdictGiven)
    ]
    reasons = sorted(v.reason for v in verdicts if v.verdict is StepVerdict.INCORRECT)
    assert reasons == ["17 + 25 = 52 is false: 17 + 25 is 42.", "2 + 3 = 15 is false: 2 + 3 is 5."]
    assert sorted(v.verdict.value for v in verdicts) == ["correct"] * 2 + ["incorrect"] * 2


@pytest.mark.parametrize(
    ("step", "claims"),
    [
        # Real embedded-model steps from the experiment's debates (2026-12-03).
        ("63 + 98 = 161, which is 102.", [("63 + 98 = 161", True), ("161 = 102", False)]),
        ("309 + 207 = 515, which is 222.", [("309 + 207 = 515", False), ("515 = 222", False)]),
        ("3 + 4 = 7, which is odd.", [("3 + 4 = 7", True)]),
        ("14 * 4 = 56 apples, which is 56.", [("14 * 4 = 56", True)]),
        ("93 = 98.", []),  # nothing computed: nothing to check
    ],
)
def test_a_chain_goes_on_past_its_result(step: str, claims: list[tuple[str, bool]]) -> None:
    assert [(c.text, c.holds) for c in check_claims(step).claims] == claims
