"""Hugging Face datasets as problem sources: the naming rules, rows checked like lines,
splits, and one-line errors when `datasets` or the Hub is missing.

No Hub is reachable from tests: `datasets.load_dataset` reads local folders (jsonl or
parquet files, or `save_to_disk` output) through the same code path, and the Hub's
failures are simulated.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_runner import CRITIC_SPEC, POLICY_SPEC, problem_text
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.problems import load_problems
from journey.problems.source import DatasetSource, parse_dataset_source

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`load_dataset` caches what it builds from local files; keep that out of ~/.cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def write_split(folder: Path, split: str, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return folder


ROWS = [
    {"problem": "What is 1 + 1?", "answer": "2", "level": 1},
    {"problem": "What is 2 + 2?", "answer": None, "level": 2},
    {"problem": "What is 6 * 7?", "answer": "42", "level": 3},
]


# -- which sources are Hugging Face datasets -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf:HuggingFaceH4/MATH-500", DatasetSource("hf", "HuggingFaceH4/MATH-500")),
        ("hf:openai/gsm8k:main@test", DatasetSource("hf", "openai/gsm8k", "main", "test")),
        ("hf:./local/folder@train", DatasetSource("hf", "./local/folder", None, "train")),
        ("hf:gsm8k", DatasetSource("hf", "gsm8k")),
        ("HuggingFaceH4/MATH-500", DatasetSource("hf", "HuggingFaceH4/MATH-500")),
        ("openai/gsm8k:main@train", DatasetSource("hf", "openai/gsm8k", "main", "train")),
        ("data/math500.jsonl", DatasetSource("jsonl", "data/math500.jsonl")),  # a missing file
        ("math500", DatasetSource("jsonl", "math500")),  # no owner/: not Hub-shaped
        ("./owner/name", DatasetSource("jsonl", "owner/name")),
        ("/abs/owner/name", DatasetSource("jsonl", "/abs/owner/name")),
    ],
)
def test_sources_are_read_by_the_documented_rules(text: str, expected: DatasetSource) -> None:
    assert parse_dataset_source(text) == expected


def test_an_existing_path_is_a_file_even_when_it_looks_like_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_split(tmp_path / "owner", "name", ROWS[:1])
    (tmp_path / "owner/name.jsonl").rename(tmp_path / "owner/name")
    assert parse_dataset_source("owner/name") == DatasetSource("jsonl", "owner/name")
    assert load_problems("owner/name").records[0].line == 1
    with pytest.raises(DatasetError, match="is a directory \\(for a Hugging Face dataset folder"):
        load_problems("owner")


def test_the_split_comes_from_the_name_or_the_argument() -> None:
    assert parse_dataset_source("hf:a/b", split="train").split == "train"
    assert parse_dataset_source("a/b@test", split="test").split == "test"
    assert str(parse_dataset_source("a/b:main", split="train")) == "hf:a/b:main@train"


@pytest.mark.parametrize(
    ("text", "split", "message"),
    [
        ("hf:", None, "should look like hf:NAME[:CONFIG][@SPLIT]"),
        ("hf:a/b:", None, "should look like hf:NAME"),
        ("hf:a/b@", None, "should look like hf:NAME"),
        ("a/b@test", "train", "names split 'test' but --split is 'train'"),
        ("hf:a/b", " ", "the split must not be empty"),
        ("d.jsonl", "test", "only applies to a Hugging Face dataset, not to the JSONL file"),
    ],
)
def test_malformed_sources_are_refused(text: str, split: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("(", "\\(")):
        parse_dataset_source(text, split=split)


# -- loading ---------------------------------------------------------------------------------


def test_rows_are_checked_like_lines_and_issues_name_the_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_split(tmp_path / "math", "train", ROWS)
    data = load_problems(f"hf:{folder}")
    source = f"hf:{folder}@train"  # the only split, named
    assert data.source == DatasetSource("hf", str(folder), None, "train")
    assert [(r.index, r.line, r.answer, r.meta) for r in data.records] == [
        (0, 0, "2", {"level": 1}),
        (2, 0, "42", {"level": 3}),
    ]
    [issue] = data.issues
    assert (issue.file, issue.line, issue.unit) == (source, 1, "row")
    assert str(issue) == f"{source} row 1: 'answer' must be a string, got null"
    assert f"{source} row 1: " in caplog.text
    with pytest.raises(DatasetError, match=f"^{source} row 1: 'answer' must be"):
        load_problems(f"hf:{folder}", strict=True)


def test_the_same_problems_get_the_same_sessions_from_a_file_or_a_dataset(tmp_path: Path) -> None:
    folder = write_split(tmp_path / "math", "test", ROWS)
    from_file = load_problems(folder / "test.jsonl")
    from_hub = load_problems(f"hf:{folder}")
    assert [r.session_id for r in from_file.records] == [r.session_id for r in from_hub.records]
    assert [r.index for r in from_file.records] == [r.index for r in from_hub.records]


def test_test_is_the_default_split_and_others_can_be_chosen(tmp_path: Path) -> None:
    folder = write_split(tmp_path / "math", "train", ROWS[:1])
    write_split(folder, "test", ROWS[2:])
    assert load_problems(f"hf:{folder}").records[0].answer == "42"
    assert load_problems(f"hf:{folder}", split="train").records[0].answer == "2"
    assert load_problems(f"hf:{folder}@train").source.split == "train"  # type: ignore[union-attr]
    with pytest.raises(DatasetError, match=r"cannot load Hugging Face dataset .*Unknown split"):
        load_problems(f"hf:{folder}@validation")


def test_several_splits_and_no_test_split_must_be_chosen(tmp_path: Path) -> None:
    folder = write_split(tmp_path / "math", "train", ROWS[:1])
    write_split(folder, "validation", ROWS[2:])
    with pytest.raises(DatasetError, match="has splits train, validation and no 'test'"):
        load_problems(f"hf:{folder}")


def test_parquet_folders_and_field_names_work_too(tmp_path: Path) -> None:
    folder = tmp_path / "gsm"
    folder.mkdir()
    rows = [{"question": "6 * 7?", "final": 42}, {"question": "1 + 2?", "final": 3}]
    datasets.Dataset.from_list(rows).to_parquet(str(folder / "test.parquet"))
    data = load_problems(f"hf:{folder}", problem_field="question", answer_field="final")
    assert [(r.problem, r.answer) for r in data.records] == [("6 * 7?", "42"), ("1 + 2?", "3")]


def test_save_to_disk_folders_load_and_odd_values_become_json(tmp_path: Path) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 0)
    table = datasets.Dataset.from_list([{"problem": "1 + 1?", "answer": "2", "added": when}])
    table.save_to_disk(str(tmp_path / "one"))
    [record] = load_problems(f"hf:{tmp_path / 'one'}").records
    assert record.meta == {"added": str(when)}
    json.dumps(record.meta)  # it travels in the session log
    with pytest.raises(DatasetError, match="one saved dataset with no splits"):
        load_problems(f"hf:{tmp_path / 'one'}@test")
    datasets.DatasetDict({"test": table, "train": table}).save_to_disk(str(tmp_path / "dict"))
    assert len(load_problems(f"hf:{tmp_path / 'dict'}")) == 1
    with pytest.raises(DatasetError, match="has no split 'dev' \\(splits: test, train\\)"):
        load_problems(f"hf:{tmp_path / 'dict'}", split="dev")


def test_a_dataset_with_no_rows_or_no_good_rows_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = write_split(tmp_path / "bad", "test", [{"question": "x"}, {"question": "y"}])
    with pytest.raises(DatasetError, match=r"no usable problem in hf:.*: all 2 rows are bad"):
        load_problems(f"hf:{bad}")
    empty = datasets.Dataset.from_dict({"problem": [], "answer": []})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: empty)  # files can't be empty
    with pytest.raises(DatasetError, match=r"^Hugging Face dataset 'hf:a/b@test' has no rows$"):
        load_problems("hf:a/b@test")


# -- failures that name the dataset in one line ----------------------------------------------


def test_an_unreachable_hub_is_one_line_naming_the_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(
            "Couldn't reach 'HuggingFaceH4/MATH-500' on the Hub (LocalEntryNotFoundError)\nmore"
        )

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DatasetError) as raised:
        load_problems("HuggingFaceH4/MATH-500")
    text = str(raised.value)
    assert "\n" not in text and raised.value.__cause__ is None and raised.value.__suppress_context__
    assert text.startswith(
        "cannot reach the Hugging Face Hub for dataset 'hf:HuggingFaceH4/MATH-500'"
    )
    assert "LocalEntryNotFoundError" in text and "hf:DIR" in text


def test_other_load_failures_are_one_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError("Dataset 'nobody/nothing' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(
        DatasetError, match=r"^cannot load Hugging Face dataset 'hf:nobody/nothing@x'"
    ):
        load_problems("hf:nobody/nothing@x")


def test_without_datasets_installed_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DatasetError) as raised:
        load_problems("hf:HuggingFaceH4/MATH-500")
    assert str(raised.value) == (
        "reading Hugging Face dataset 'hf:HuggingFaceH4/MATH-500' needs "
        "pip install 'journey-learning[train]' (or pip install datasets)"
    )


# -- the command -----------------------------------------------------------------------------

cli = CliRunner()


def test_synth_runs_on_a_local_hugging_face_dataset_and_records_it(tmp_path: Path) -> None:
    rows = [{"problem": problem_text(k, "plain"), "answer": str(2 * k)} for k in (1, 2, 3)]
    folder = write_split(tmp_path / "math", "train", rows)
    write_split(folder, "test", rows[:1])
    args = ["synth", "--dataset", f"hf:{folder}", "--split", "train",
            "--out", str(tmp_path / "run"), "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC,
            "--critic-mode", "generate", "--limit", "2", "--no-progress", "--json"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["solved"] == 2
    section = json.loads((tmp_path / "run/run.json").read_text())["dataset"]
    assert section == {
        "format": "huggingface",
        "spec": f"hf:{folder}@train",
        "name": str(folder),
        "config": None,
        "split": "train",
        "problem_field": "problem",
        "answer_field": "answer",
        "offset": 0,
        "limit": 2,
        "shard": None,
        "problems": 2,
    }


def test_synth_records_a_jsonl_file_as_before(tmp_path: Path) -> None:
    path = write_split(tmp_path, "d", [{"problem": problem_text(1, "plain"), "answer": "2"}])
    args = ["synth", "--dataset", str(path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--no-progress", "--json"]  # fmt: skip
    assert cli.invoke(app, args).exit_code == 0
    section = json.loads((tmp_path / "run/run.json").read_text())["dataset"]
    assert (section["format"], section["path"]) == ("jsonl", str(path / "d.jsonl"))
    result = cli.invoke(app, [*args, "--split", "test"])
    assert isinstance(result.exception, ConfigError)


def test_synth_on_an_unreachable_hub_is_one_line(tmp_path: Path) -> None:
    # A real load, offline (conftest sets HF_HUB_OFFLINE) and with an empty cache.
    env = {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "journey", "synth", "--dataset", "HuggingFaceH4/MATH-500",
               "--out", str(tmp_path / "run")]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "cannot reach the Hugging Face Hub for dataset 'hf:HuggingFaceH4/MATH-500'" in lines[0]
    assert not (tmp_path / "run").exists()


def test_eval_takes_a_hugging_face_dataset_and_records_the_split(tmp_path: Path) -> None:
    from tests.test_evaluation import PROBLEMS

    folder = write_split(tmp_path / "math", "test", PROBLEMS[:2])
    write_split(folder, "train", PROBLEMS[2:3])
    out = tmp_path / "eval"
    args = ["eval", "--model", "function:tests.test_evaluation:fake_reply",
            "--dataset", f"hf:{folder}", "--out", str(out), "--no-progress", "--json"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{\n") :])  # after datasets' notes
    assert metrics["problems"] == 2  # the test split, by default
    assert json.loads((out / "eval.json").read_text())["dataset"] == f"hf:{folder}@test"
    args[args.index(str(out))] = str(tmp_path / "train")
    result = cli.invoke(app, [*args, "--split", "train"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{\n") :])["problems"] == 1
