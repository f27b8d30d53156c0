"""What a long thought is made of, counted exactly: tokens, lines, steps, keywords,
reflections, backtracks; and many thoughts as distributions and rates per 1k tokens."""

from __future__ import annotations

import math

import pytest

from journey.longthought.thought_metrics import (
    DEFAULT_KEYWORDS,
    Distribution,
    ThoughtMetrics,
    measure_thought,
    summarise_thoughts,
)
from journey.protocols.vocabulary import phrase_pattern


def words(text: str) -> int:
    return len(text.split())


JOURNEY = """Step 1: There are 4 pens.

Step 2: 4 * 4 = 16.
Wait, step 2 is wrong. There are 3 pens. Let me go back to step 1.
   \t
**Step 2.** Hmm, 3 * 4 = 12, so \\boxed{12}."""


def test_one_thought_counted_exactly() -> None:
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return 1234

    m = measure_thought(JOURNEY, count, ("wait", "hmm", "so", "let me", "step"))
    assert seen == [JOURNEY]  # the whole text, once
    assert m.tokens == 1234
    assert m.lines == 4  # blank and whitespace-only lines are not lines
    assert m.steps == 3  # "Step 1:", "Step 2:", "**Step 2.**"; not "Wait, step 2 is wrong"
    # Wait, is wrong, Let me go back, Hmm
    assert m.reflections == 4
    assert m.backtracks == 1  # "Let me go back to step 1" is one way back, not two
    assert m.keywords == {"wait": 1, "hmm": 1, "so": 1, "let me": 1, "step": 5}


def test_keywords_are_whole_words_in_any_case_and_phrases_span_whitespace() -> None:
    text = "WAIT. Waiting, awaited, wait-list; also sold so. Let me\n  check. let me checkout"
    m = measure_thought(text, words, ("wait", "so", "let me check", "Wait"))
    # "wait-list" holds the word wait; "Waiting" and "awaited" do not
    assert m.keywords["wait"] == 2 and m.keywords["Wait"] == 2
    assert m.keywords["so"] == 1  # not in "also" or "sold"
    assert m.keywords["let me check"] == 1  # across the line break, not "checkout"


def test_steps_are_labels_at_the_start_of_a_line() -> None:
    text = "step 1: lower case\n  Step 2 : spaced\n### Step 3: heading\nStep 4 is said\nsee Step 5:"
    assert measure_thought(text, words, ()).steps == 3


def test_reflections_and_backtracks() -> None:
    text = (
        "Hmm, that does not seem right. Oops, a mistake: step 2 was wrong.\n"
        "I will backtrack and start over. Backtracking is not a word here. "
        "Let's go back; going back to the start. Let me try a different approach."
    )
    m = measure_thought(text, words, ())
    # Hmm, does not seem right, Oops, mistake, was wrong
    assert m.reflections == 5
    # backtrack, start over, let's go back, going back to, try a different approach
    assert m.backtracks == 5
    assert m.keywords == {}


def test_an_empty_text() -> None:
    m = measure_thought("", words)
    assert (m.tokens, m.lines, m.steps, m.reflections, m.backtracks) == (0, 0, 0, 0, 0)
    assert m.keywords == dict.fromkeys(DEFAULT_KEYWORDS, 0)


def test_phrase_pattern() -> None:
    assert phrase_pattern([]) is None and phrase_pattern(["  ", ""]) is None
    pattern = phrase_pattern(["let me", "let me go back"])
    assert pattern is not None
    assert pattern.findall("Let me\tgo  back. let me see. outlet me") == [
        "Let me\tgo  back",
        "let me",
    ]


def test_quantiles_interpolate_between_ranks() -> None:
    d = Distribution.of([10, 1, 4, 2, 3])
    assert (d.mean, d.minimum, d.maximum) == (4.0, 1, 10)
    assert d.median == 3.0
    assert d.p10 == pytest.approx(1.4)  # rank 0.4 between 1 and 2
    assert d.p90 == pytest.approx(7.6)  # rank 3.6 between 4 and 10
    even = Distribution.of([1, 2, 3, 4])
    assert even.median == 2.5 and even.p90 == pytest.approx(3.7)
    one = Distribution.of([7])
    assert (one.mean, one.p10, one.median, one.p90) == (7.0, 7.0, 7.0, 7.0)


def test_no_values_is_nan_everywhere() -> None:
    d = Distribution.of([])
    assert all(math.isnan(v) for v in (d.mean, d.p10, d.median, d.p90, d.minimum, d.maximum))


def metrics(tokens: int, reflections: int, backtracks: int, **keywords: int) -> ThoughtMetrics:
    return ThoughtMetrics(tokens, 2, 1, reflections, backtracks, keywords)


def test_rates_are_per_thousand_tokens_over_the_whole_source() -> None:
    keywords = ("wait", "hmm")
    summary = summarise_thoughts(
        [metrics(100, 3, 0, wait=2, hmm=0), metrics(300, 0, 1, wait=2), metrics(600, 1, 0)],
        keywords,
    )
    assert summary.thoughts == 3
    assert summary.token_counts == [100, 300, 600]
    assert summary.tokens.mean == pytest.approx(1000 / 3) and summary.tokens.median == 300
    assert summary.lines.mean == 2.0 and summary.steps.median == 1.0
    assert summary.keywords_per_1k == {"wait": 4.0, "hmm": 0.0}  # 4 waits in 1,000 tokens
    assert summary.reflections_per_1k == 4.0 and summary.backtracks_per_1k == 1.0
    assert summary.with_reflection == pytest.approx(2 / 3)
    assert summary.with_backtrack == pytest.approx(1 / 3)


def test_measured_texts_sum_up() -> None:
    texts = ["wait wait so", "Step 1: hmm, so.\nStep 2: done", ""]
    summary = summarise_thoughts([measure_thought(t, words, ("so",)) for t in texts], ("so",))
    assert summary.token_counts == [3, 7, 0]
    assert summary.keywords_per_1k == {"so": 200.0}  # 2 in 10 tokens
    assert summary.steps.mean == pytest.approx(2 / 3)
    assert summary.with_reflection == pytest.approx(2 / 3)  # wait, hmm; the empty one has none


def test_an_empty_source_gives_nan_not_an_error() -> None:
    summary = summarise_thoughts([], ("wait",))
    assert summary.thoughts == 0 and summary.token_counts == []
    assert math.isnan(summary.tokens.mean) and math.isnan(summary.steps.p90)
    assert math.isnan(summary.keywords_per_1k["wait"])
    assert math.isnan(summary.reflections_per_1k) and math.isnan(summary.with_backtrack)


def test_thoughts_without_tokens_have_no_rates_but_have_shares() -> None:
    summary = summarise_thoughts([metrics(0, 0, 0, wait=0)], ("wait",))
    assert math.isnan(summary.keywords_per_1k["wait"]) and math.isnan(summary.backtracks_per_1k)
    assert summary.with_reflection == 0.0 and summary.tokens.mean == 0.0
