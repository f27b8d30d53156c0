"""Problem datasets: parsing, every kind of bad line with its file:line, shards and slices."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from journey.errors import ConfigError, DatasetError
from journey.problems import ProblemRecord, Shard, load_problems, session_id_for
from journey.problems.dataset import issue_lines

MATH_LINE = {
    "problem": "What is $1+1$?",
    "solution": "It is $\\boxed{2}$.",
    "answer": "2",
    "subject": "Prealgebra",
    "level": 1,
    "unique_id": "test/prealgebra/1.json",
}


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


def problems_file(path: Path, count: int) -> Path:
    return write_lines(
        path,
        [
            json.dumps({"problem": f"What is {k} + {k}?", "answer": str(2 * k)})
            for k in range(count)
        ],
    )


def test_math_style_lines_keep_every_other_field_in_meta(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "math.jsonl",
        [json.dumps(MATH_LINE), "", json.dumps(MATH_LINE | {"problem": "2+3?", "answer": "5"})],
    )
    data = load_problems(path)
    assert data.issues == [] and len(data) == 2
    first, second = data.records
    assert first == ProblemRecord(
        index=0,
        problem="What is $1+1$?",
        answer="2",
        session_id=session_id_for("What is $1+1$?"),
        line=1,
        meta={k: MATH_LINE[k] for k in ("solution", "subject", "level", "unique_id")},
    )
    assert (second.index, second.line, second.answer) == (
        1,
        3,
        "5",
    )  # blank lines count for nothing


def test_field_names_are_configurable_and_numbers_are_answers(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "gsm.jsonl", [json.dumps({"question": "6 * 7?", "final": 42})])
    [record] = load_problems(path, problem_field="question", answer_field="final").records
    assert (record.problem, record.answer, record.meta) == ("6 * 7?", "42", {})


def test_crlf_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(MATH_LINE).encode() + b"\r\n")
    [record] = load_problems(path).records
    assert record.problem == "What is $1+1$?" and record.answer == "2"


BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"problem": "1+1?", "answer": ', "not valid JSON"),
    (b'{"problem": "caf\xe9?", "answer": "1"}', "not UTF-8 (byte 0xe9 at column 17)"),
    (b'["1+1?", "2"]', "expected a JSON object, got an array"),
    (b'"1+1?"', "expected a JSON object, got a string"),
    (b"null", "expected a JSON object, got null"),
    (b'{"answer": "2"}', "no 'problem' field (fields: answer)"),
    (b'{"problem": "   ", "answer": "2"}', "'problem' is empty"),
    (b'{"problem": "1+1?"}', "no 'answer' field (fields: problem)"),
    (b'{"problem": "1+1?", "answer": ""}', "'answer' is empty"),
    (b'{"problem": ["1+1?"], "answer": "2"}', "'problem' must be a string, got an array"),
    (b'{"problem": "1+1?", "answer": true}', "'answer' must be a string, got a boolean"),
    (b'{"problem": "1+1?", "answer": null}', "'answer' must be a string, got null"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_bad_line_is_reported_with_file_and_line_and_skipped(
    tmp_path: Path, line: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = json.dumps(MATH_LINE).encode()
    path = write_lines(tmp_path / "d.jsonl", [good, line, good.replace(b"1+1", b"2+2")])
    with caplog.at_level(logging.WARNING, logger="journey.problems.dataset"):
        data = load_problems(path)
    assert [r.line for r in data.records] == [1, 3]
    assert [r.index for r in data.records] == [0, 2]  # a bad line keeps its index: no shifting
    [issue] = data.issues
    assert (issue.file, issue.line) == (str(path), 2)
    assert str(issue).startswith(f"{path}:2: ") and message in str(issue)
    assert f"{path}:2: " in caplog.text


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_strict_mode_raises_on_the_first_bad_line(
    tmp_path: Path, line: bytes, message: str
) -> None:
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(MATH_LINE).encode(), line])
    with pytest.raises(DatasetError) as raised:
        load_problems(path, strict=True)
    text = str(raised.value)
    assert text.startswith(f"{path}:2: ") and message in text and "\n" not in text


def test_unreadable_or_empty_files_are_one_line_errors(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.jsonl": "does not exist",
        tmp_path: "is a directory",
        write_lines(tmp_path / "empty.jsonl", []): "is empty",
        write_lines(tmp_path / "blank.jsonl", ["", "   ", ""]): "is empty",
        write_lines(tmp_path / "bad.jsonl", ["{", "[]"]): "all 2 lines are bad (first: ",
    }
    for path, message in cases.items():
        with pytest.raises(DatasetError) as raised:
            load_problems(path)
        assert message in str(raised.value) and "\n" not in str(raised.value)


def test_duplicate_problems_get_distinct_stable_session_ids(tmp_path: Path) -> None:
    same = json.dumps({"problem": "1+1?", "answer": "2"})
    path = write_lines(tmp_path / "d.jsonl", [same, json.dumps(MATH_LINE), same, same])
    ids = [r.session_id for r in load_problems(path).records]
    base = session_id_for("1+1?")
    assert ids == [base, session_id_for(MATH_LINE["problem"]), f"{base}-2", f"{base}-3"]
    assert [r.session_id for r in load_problems(path).records] == ids  # stable across reads
    # Ids are given before slicing, so a shard or an offset sees the same ones.
    assert [r.session_id for r in load_problems(path).select(offset=2)] == ids[2:]


def test_shards_partition_the_selection(tmp_path: Path) -> None:
    data = load_problems(problems_file(tmp_path / "d.jsonl", 10))
    assert [r.index for r in data.select(shard=Shard(1, 3))] == [1, 4, 7]
    selection = data.select(offset=2, limit=5)
    assert [r.index for r in selection] == [2, 3, 4, 5, 6]
    shards = [data.select(offset=2, limit=5, shard=Shard(i, 3)) for i in range(3)]
    assert sorted(r.index for shard in shards for r in shard) == [r.index for r in selection]
    assert [r.index for r in shards[0]] == [3, 6]
    assert data.select(limit=100) == data.records
    assert data.select(offset=9) == data.records[9:]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2/2", "shard 2/2 does not exist: the index must be 0..1"),
        ("-1/3", "shard -1/3 does not exist"),
        ("1/0", "shard count must be at least 1, got 0"),
        ("a/b", "shard 'a/b' should look like i/n"),
        ("3", "shard '3' should look like i/n"),
    ],
)
def test_bad_shards_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("'", "'")):
        Shard.parse(text)


def test_shard_round_trips_as_text() -> None:
    assert Shard.parse(" 1/4 ") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"


def test_bad_offsets_and_limits_are_refused(tmp_path: Path) -> None:
    data = load_problems(problems_file(tmp_path / "d.jsonl", 3))
    with pytest.raises(ConfigError, match="offset 3 is past the end"):
        data.select(offset=3)
    with pytest.raises(ConfigError, match="offset must be 0 or more, got -1"):
        data.select(offset=-1)
    with pytest.raises(ConfigError, match="limit must be at least 1, got 0"):
        data.select(limit=0)


def test_issue_lines_show_the_first_few_and_count_the_rest(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(MATH_LINE)] + ["{"] * 7)
    lines = list(issue_lines(load_problems(path).issues, show=5))
    assert len(lines) == 6 and lines[0].startswith(f"{path}:2: ") and lines[-1] == "... and 2 more"
