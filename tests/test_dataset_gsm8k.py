"""GSM8K lines: the `#### N` line of the rationale is the gold answer, the rationale (of
any length) the reference solution that `journey expand` reads; a rationale without
its `####` line is a bad line, skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey.agents.verifier import AnswerVerifier
from journey.errors import DatasetError
from journey.problems import load_problems
from journey.problems.dataset import MAX_ANSWER_CHARS
from journey.problems.reference import reference_solution, split_answer_line, with_reference
from journey.runs.expansion import prepare_problems

QUESTION = (
    "A bakery sells muffins for $3 each and loaves of bread for $5 each. On Monday it "
    "sold 48 muffins and 20 loaves. On Tuesday it sold half as many muffins and twice as "
    "many loaves. Its costs are $1 per muffin and $2 per loaf, plus $40 of rent a day. "
    "How much profit did it make over the two days?"
)
STEPS = [
    "On Monday the bakery sold 48 muffins at $3 each, so muffins brought in "
    "48*3=<<48*3=144>>144 dollars.",
    "It also sold 20 loaves at $5 each, which brought in 20*5=<<20*5=100>>100 dollars.",
    "So Monday's sales came to 144+100=<<144+100=244>>244 dollars.",
    "On Tuesday it sold half as many muffins as on Monday: 48/2=<<48/2=24>>24 muffins.",
    "Those brought in 24*3=<<24*3=72>>72 dollars.",
    "It sold twice as many loaves as on Monday: 20*2=<<20*2=40>>40 loaves.",
    "Those brought in 40*5=<<40*5=200>>200 dollars.",
    "So Tuesday's sales came to 72+200=<<72+200=272>>272 dollars.",
    "Over the two days the bakery sold 48+24=<<48+24=72>>72 muffins, which cost "
    "72*1=<<72*1=72>>72 dollars to make.",
    "It sold 20+40=<<20+40=60>>60 loaves, which cost 60*2=<<60*2=120>>120 dollars to make.",
    "The rent for two days was 40*2=<<40*2=80>>80 dollars.",
    "So its costs came to 72+120+80=<<72+120+80=272>>272 dollars in all.",
    "Its sales over the two days came to 244+272=<<244+272=516>>516 dollars.",
    "Its profit is what is left of the sales once the costs are paid: "
    "516-272=<<516-272=244>>244 dollars.",
]
RATIONALE = "\n".join([*STEPS, "#### 244"])


def gsm8k_file(path: Path, answers: list[str]) -> Path:
    rows = [{"question": f"{QUESTION} (case {k})", "answer": a} for k, a in enumerate(answers)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_long_rationale_loads_with_its_hash_line_as_the_gold(tmp_path: Path) -> None:
    assert len(RATIONALE) > MAX_ANSWER_CHARS  # read as the answer, it would be refused
    data = load_problems(
        gsm8k_file(tmp_path / "gsm8k.jsonl", [RATIONALE]), problem_field="question"
    )
    [record] = data.records
    assert data.issues == []
    assert record.answer == "244"
    assert record.meta == {"answer": RATIONALE}  # the rationale, as the line had it
    assert AnswerVerifier.for_problem(record.answer, record.meta).check("$244").correct


def test_expand_still_reads_the_rationale_as_the_reference(tmp_path: Path) -> None:
    path = gsm8k_file(tmp_path / "gsm8k.jsonl", [RATIONALE])
    [record] = load_problems(path, problem_field="question").records
    [ready], left_out = prepare_problems([record], solution_field="answer", answer_field="answer")
    assert not left_out and ready.answer == "244"
    reference = ready.meta["answer"]
    assert reference.startswith("On Monday the bakery sold 48 muffins at $3 each")
    assert "<<" not in reference and "####" not in reference  # annotations and gold line gone
    assert "so muffins brought in 48*3=144 dollars." in reference
    solution = reference_solution(reference, ready.problem)
    assert solution is not None
    assert solution.key_results[:4] == ("144", "100", "244", "24")  # derived, not given
    ready_again, why = with_reference(ready, "answer")  # what the expand session reads back
    assert why is None and ready_again.meta["answer"] == reference


def test_calculator_annotations_do_not_confuse_the_gold(tmp_path: Path) -> None:
    short = "She halves 48: 48/2=<<48/2=24>>24.\nThen 24*3=<<24*3=72>>72.\n####  72 "
    [record] = load_problems(
        gsm8k_file(tmp_path / "g.jsonl", [short]), problem_field="question"
    ).records
    assert record.answer == "72" and record.meta["answer"] == short.strip()
    assert split_answer_line("a\n#### 1\nb\n#### 2") == ("a\n#### 1\nb\n", "2")  # the last line


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "\n".join(STEPS),
            "'answer' is a GSM8K-style rationale (calculator annotation <<48*3=144>>) "
            "without the '#### N' line that marks its gold answer",
        ),
        (
            "x " * 600,
            "'answer' is 1,199 characters long; a gold answer over 1,000 is refused "
            "(the grader would time out on it); "
            "a rationale must end in a '#### N' line",
        ),
        ("She had 3 and got 4 more.\n####", "'answer' has an empty '####' line: no gold answer"),
    ],
)
def test_a_rationale_without_its_gold_line_is_a_counted_bad_line(
    tmp_path: Path, answer: str, message: str
) -> None:
    path = gsm8k_file(tmp_path / "g.jsonl", [RATIONALE, answer, "2+2=<<2+2=4>>4\n#### 4"])
    data = load_problems(path, problem_field="question")
    assert [r.answer for r in data.records] == ["244", "4"]
    [issue] = data.issues
    assert str(issue) == f"{path}:2: {message}"
    with pytest.raises(DatasetError) as raised:
        load_problems(path, problem_field="question", strict=True)
    assert str(raised.value) == f"{path}:2: {message}" and "\n" not in str(raised.value)


def test_a_plain_answer_is_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "math.jsonl"
    path.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n", encoding="utf-8")
    [record] = load_problems(path).records
    assert (record.answer, record.meta) == ("2", {})
    assert with_reference(record, "answer")[1] == (
        "'answer' marks no answer ('####' or a box) in its solution"
    )
