"""What a model trained on: its trainings' data found from `journey-train.json`, back
through the models they started from, and the evaluation problems among their rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_evaluation import PROBLEMS, write_dataset
from typer.testing import CliRunner

from journey.cli import app
from journey.engine.model_store import embedded_model_dir
from journey.training.iterate_report import eval_row, overlap_notes
from journey.training.summary import SUMMARY_FILE, file_digest
from journey.training.trained_on import (
    TrainingData,
    absolute_spec,
    overlap_lines,
    seen_problems,
    training_data,
)

ASKED = "Solve the following multiplication: 2 * 3 * 4."


def _summary(
    model: Path, *, start: str, data: str, out: str | None = None, digest: str | None = None
) -> None:
    """The `journey-train.json` a training writes, with only what is read here real."""
    model.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "kind": "sft", "model": start, "data": data, "data_sha256": digest,
        "out": out or str(model), "rows": 1,
        "lora": False, "dtype": "float32", "device": "cpu", "steps": 1, "loss_head": [],
        "loss_tail": [], "tokens_seen": 1, "tokens_per_second": 1.0, "seconds_per_step": 1.0,
        "wall_seconds": 1.0, "config": {},
    }  # fmt: skip
    (model / SUMMARY_FILE).write_text(json.dumps(summary))


def _rows(path: Path, *rows: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "not json\n")
    return path


def test_the_data_of_every_training_back_to_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second model trained from a first: both data files, newest first. The first
    recorded its data as given before 2026-12-05, relative to the folder training ran
    in, with a relative `out`; it is found from the model's folder, not the current one."""
    first_rows = _rows(tmp_path / "runs/exports/shortcut.jsonl", {"prompt": "x", "completion": "y"})
    first = tmp_path / "runs/models/first"
    _summary(first, start="embedded", data="runs/exports/shortcut.jsonl", out="runs/models/first")
    second_rows = _rows(tmp_path / "revisions.jsonl", {"prompt": "x", "completion": "y"})
    second = tmp_path / "second"
    _summary(second, start=f"hf:{first}", data=str(second_rows))
    monkeypatch.chdir(tmp_path / "runs")  # not where the first training ran
    assert training_data(f"hf:{second}").files == (second_rows, first_rows)
    assert training_data(str(second)).files == (second_rows, first_rows)  # a bare folder
    first_rows.unlink()
    assert training_data(str(second)).missing == ("runs/exports/shortcut.jsonl: gone",)
    for untrained in ("embedded", "openai:gpt-4o", "function:tests.x:y", str(tmp_path)):
        assert training_data(untrained).files == () and training_data(untrained).missing == ()
    assert training_data("vllm:HuggingFaceTB/SmolLM2-135M-Instruct") == TrainingData()


def test_what_cannot_be_followed_is_unknown_never_trained_on_nothing(tmp_path: Path) -> None:
    """A model folder that is gone (given as `hf:` or bare), an evaluation that recorded
    no model, an unreadable summary, a data file written over or not UTF-8."""
    gone = tmp_path / "gone"
    assert training_data(f"hf:{gone}").missing == (f"model folder {gone}: not there",)
    assert training_data(str(gone)).missing == (
        f"model {gone}: not a folder here, nor a model spec",
    )
    assert training_data("?").missing == ("model ?: names no model folder",)
    rows = _rows(tmp_path / "d.jsonl", {"prompt": "x", "completion": "y"})
    model = tmp_path / "m"
    _summary(model, start="embedded", data=str(rows))
    (model / SUMMARY_FILE).write_text("{not a summary")
    (why,) = training_data(str(model)).missing
    assert why == f"training summary {model / SUMMARY_FILE}: ValidationError"
    _summary(model, start="embedded", data=str(rows), digest=file_digest(rows))
    assert training_data(str(model)).files == (rows,)
    rows.write_text(rows.read_text() + json.dumps({"prompt": "z", "completion": "y"}) + "\n")
    assert training_data(str(model)).missing == (
        f"{rows}: written over since the training read it",
    )
    rows.write_bytes(b'{"prompt": "\xff"}\n')
    _summary(model, start="embedded", data=str(rows))
    assert training_data(str(model)).missing == (f"{rows}: unreadable (UnicodeDecodeError)",)
    assert overlap_lines(str(model), ["x"]) == [
        f"training data of {model} unknown ({rows}: unreadable (UnicodeDecodeError)): "
        "not checked for overlap"
    ]


def test_a_relative_start_is_found_from_where_its_training_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second training started from `runs/first`, given relative, as summaries recorded
    it before 2026-12-05; new summaries record the folder absolute."""
    first_rows = _rows(tmp_path / "runs/first.jsonl", {"prompt": "x", "completion": "y"})
    _summary(tmp_path / "runs/first", start="embedded", data=str(first_rows))
    second_rows = _rows(tmp_path / "second.jsonl", {"prompt": "x", "completion": "y"})
    for start in ("runs/first", "hf:runs/first"):
        _summary(tmp_path / "runs/second", start=start, data="second.jsonl", out="runs/second")
        monkeypatch.chdir(tmp_path / "runs")
        assert training_data("second").files == (second_rows, first_rows)
    monkeypatch.chdir(tmp_path)
    assert absolute_spec("hf:runs/first") == f"hf:{tmp_path / 'runs/first'}"
    assert absolute_spec("runs/first") == str(tmp_path / "runs/first")
    assert absolute_spec("embedded") == "embedded"
    assert absolute_spec("hf:gone?dtype=float32") == "hf:gone?dtype=float32"


def test_a_model_that_names_itself_as_its_start_is_read_once(tmp_path: Path) -> None:
    rows = _rows(tmp_path / "d.jsonl", {"prompt": "x", "completion": "y"})
    _summary(tmp_path / "m", start=str(tmp_path / "m"), data=str(rows))
    assert training_data(str(tmp_path / "m")).files == (rows,)


def test_a_problem_is_seen_when_its_text_stands_in_a_prompt(tmp_path: Path) -> None:
    conversational = _rows(
        tmp_path / "a.jsonl",
        {
            "prompt": [
                {"role": "system", "content": "Solve the following multiplication: 9 * 9 * 9."},
                {"role": "user", "content": f"Problem: {ASKED}\n\nWrite Step 1."},
            ],
            "completion": [{"role": "assistant", "content": "Step 1: 24."}],
        },
    )
    messages = _rows(
        tmp_path / "b.jsonl",
        {"messages": [{"role": "user", "content": "What  is\n1/2 as a decimal?"}]},
    )
    plain = _rows(tmp_path / "c.jsonl", {"prompt": "Name the interval.", "chosen": "a"})
    problems = [ASKED, "What is 1/2 as a decimal?", "Name the interval.", "Solve x+1=3."]
    found = seen_problems(problems, [conversational, messages, plain])
    assert found == problems[:3]  # whitespace aside; a system prompt is not the problem
    assert seen_problems(["Solve the following multiplication: 9 * 9 * 9."], [conversational]) == []
    assert seen_problems(["Solve the following multiplication: 2 * 3."], [conversational]) == []
    numbers = _rows(tmp_path / "n.jsonl", {"prompt": "Compute 12 * 34.", "completion": "408"})
    assert seen_problems(["Compute 12 * 3", "Compute 12 * 34", "", "12 *"], [numbers]) == [
        "Compute 12 * 34",
        "12 *",
    ]  # not inside a longer number; an empty problem nowhere


def test_the_lines_say_how_many_and_where_or_that_nothing_was_checked(tmp_path: Path) -> None:
    rows = _rows(tmp_path / "d.jsonl", {"prompt": "Solve x+1=3.", "completion": "2"})
    _summary(tmp_path / "m", start="embedded", data=str(rows))
    spec = f"hf:{tmp_path / 'm'}"
    assert overlap_lines(spec, ["Solve x+1=3.", "Unanswerable?"]) == [
        f"1 of 2 problems stand in the training data of {spec} ({rows}): their accuracy "
        "is not held out"
    ]
    assert overlap_lines(spec, ["Unanswerable?"]) == []
    rows.unlink()
    assert overlap_lines(spec, ["Solve x+1=3."]) == [
        f"training data of {spec} unknown ({rows}: gone): not checked for overlap"
    ]


@pytest.mark.embedded
def test_journey_eval_says_which_problems_the_model_trained_on(tmp_path: Path) -> None:
    """The embedded model's weights, linked, with a summary naming a training file that
    holds one of the evaluation's problems."""
    model = tmp_path / "model"
    model.mkdir()
    for path in embedded_model_dir().iterdir():
        (model / path.name).symlink_to(path)
    rows = _rows(tmp_path / "train.jsonl", {"prompt": PROBLEMS[1]["problem"], "completion": "2"})
    _summary(model, start="embedded", data=str(rows))
    dataset = write_dataset(tmp_path / "p.jsonl", PROBLEMS[:2])
    args = ["eval", "--model", str(model), "--dataset", str(dataset), "--out", str(tmp_path / "e"),
            "--max-new-tokens", "4", "--no-progress", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    warned = " ".join(result.stderr.split())
    assert f"overlap: 1 of 2 problems stand in the training data of {model}" in warned


def test_an_iteration_s_report_counts_the_evaluated_problems_a_model_trained_on(
    tmp_path: Path,
) -> None:
    """An evaluation of a trained model on problems among its training rows: counted on
    its row of the report, and a note says it is not held out."""
    dataset = write_dataset(tmp_path / "p.jsonl", PROBLEMS[:3])
    out = tmp_path / "eval"
    args = ["eval", "--model", "function:tests.test_evaluation:fake_reply", "--dataset",
            str(dataset), "--out", str(out), "--no-progress", "--json"]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    rows = _rows(tmp_path / "train.jsonl", {"prompt": PROBLEMS[0]["problem"], "completion": "x"})
    _summary(tmp_path / "model", start="embedded", data=str(rows))
    manifest = json.loads((out / "eval.json").read_text())
    manifest["model"] = f"hf:{tmp_path / 'model'}"  # as if it had evaluated that model
    (out / "eval.json").write_text(json.dumps(manifest))
    row = eval_row("journey-seed1", out)
    assert (row.trained_on, row.problems) == (1, 3)
    assert overlap_notes([row]) == [
        "journey-seed1: 1 of 3 evaluated problems stand in its training data: not held out"
    ]
    rows.unlink()
    assert eval_row("journey-seed1", out).trained_on is None
    assert overlap_notes([eval_row("journey-seed1", out)]) == [
        "journey-seed1: what it trained on is unknown; not checked for overlap"
    ]
