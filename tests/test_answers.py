"""The final answer a reply marks: boxes, `####` lines and answer phrases."""

from __future__ import annotations

import pytest

from journey.protocols import extract_final_answer, has_final_answer

MARKED = [
    # \boxed and \fbox
    ("plain box", r"So x = \boxed{5}.", "5"),
    ("nested braces", r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    ("deeply nested", r"\boxed{\sqrt{\frac{a^{2}}{b_{1}}}}", r"\sqrt{\frac{a^{2}}{b_{1}}}"),
    ("last box wins", r"First \boxed{3}, then corrected: \boxed{4}", "4"),
    ("fbox", r"\fbox{7}", "7"),
    ("box and fbox, last wins", r"\fbox{1} and \boxed{2}", "2"),
    ("space before brace", r"\boxed {12}", "12"),
    ("box inside dollars", r"The result is $\boxed{-3}$.", "-3"),
    ("dollars inside box", r"\boxed{$x^2$}", "x^2"),
    ("escaped braces in a set", r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    ("text answer", r"\boxed{\text{(B)}}", r"\text{(B)}"),
    ("empty last box falls back to the one before", r"\boxed{8} ... \boxed{}", "8"),
    ("box beats a later phrase", r"\boxed{9}. The answer is 10.", "9"),
    ("unicode in the box", r"答案是 \boxed{½}", "½"),
    # #### lines
    ("gsm8k line", "She has 72 apples.\n#### 72", "72"),
    ("last #### line", "#### 1\nwait\n#### 2", "2"),
    ("#### with comma number", "#### 1,000", "1,000"),
    ("#### beats a phrase", "The answer is 3.\n#### 4", "4"),
    # final answer phrases
    ("final answer is", "The final answer is 42.", "42"),
    ("final answer colon", "Final answer: 17", "17"),
    ("bold final answer", "**Final Answer:** 42", "42"),
    ("minerva style", "Final Answer: The final answer is $6$. I hope it is correct.", "6"),
    ("final answer in dollars", r"The final answer is $\frac{3}{4}$.", r"\frac{3}{4}"),
    ("final answer beats the answer", "The answer is 3. Final answer: 4", "4"),
    ("last final answer wins", "final answer: 1\nNo, final answer: 2", "2"),
    # the answer is
    ("the answer is", "Therefore, the answer is 12.", "12"),
    ("sentence ends at a period", "So the answer is 12. Let me double check.", "12"),
    ("decimal kept whole", "The answer is 3.14.", "3.14"),
    ("math period kept", "The answer is $x=1.5$.", "x=1.5"),
    ("paren math", r"the answer is \(2\sqrt{3}\)", r"2\sqrt{3}"),
    ("case insensitive", "THE ANSWER IS 8", "8"),
    ("ordered pair with comma", "The answer is (1, 2).", "(1, 2)"),
    ("two dollar groups stay whole", "the answer is $5$ and $6$", "$5$ and $6$"),
]

UNMARKED = [
    ("empty", ""),
    ("whitespace", "   \n\t"),
    ("no marker", "We compute 3 + 4 = 7 and continue."),
    ("empty box", r"\boxed{}"),
    ("box of whitespace", r"\boxed{  }"),
    ("unclosed box", r"so x = \boxed{12"),
    ("unclosed box, then a phrase with it", r"The answer is \boxed{12"),
    ("empty phrase", "The answer is ."),
    ("empty dollars", "The final answer is $$"),
    ("markdown heading is not an answer line", "#### Step 2: compute x\nx = 4"),
    ("five hashes", "##### 5"),
    ("answer word without the phrase", "An answer appears later, maybe."),
    ("the answer is empty box", r"The answer is \boxed{}."),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in MARKED], ids=[c[0] for c in MARKED])
def test_extracts_the_marked_answer(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected
    assert has_final_answer(text)


@pytest.mark.parametrize("text", [c[1] for c in UNMARKED], ids=[c[0] for c in UNMARKED])
def test_unmarked_text_has_no_answer(text: str) -> None:
    assert extract_final_answer(text) is None
    assert not has_final_answer(text)


def test_long_text_with_many_boxes_keeps_the_last() -> None:
    text = " ".join(rf"\boxed{{{n}}}" for n in range(2000))
    assert extract_final_answer(text) == "1999"


def test_huge_unclosed_box_is_no_answer_and_returns() -> None:
    assert extract_final_answer(r"\boxed{" + "{" * 5000 + "x" * 10_000) is None


def test_answer_is_stripped_of_surrounding_whitespace() -> None:
    answer = extract_final_answer("\\boxed{  \n 7 \n }")
    assert answer == "7"


def test_many_unclosed_boxes_are_read_in_linear_time() -> None:
    text = r"\boxed{" * 20_000 + r" and \boxed{3}"
    assert extract_final_answer(text) == "3"
