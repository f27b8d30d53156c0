"""Training: data checks with file:line errors, config validation, SFT/DPO on the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.training.data import load_dpo_rows, load_sft_rows
from journey.training.summary import file_digest

runner = CliRunner()

SFT_ROWS = [
    {
        "prompt": [{"role": "user", "content": "What is 2+2?"}],
        "completion": [{"role": "assistant", "content": "2+2 = 4. \\boxed{4}"}],
    },
    {
        "messages": [
            {"role": "system", "content": "Reason step by step."},
            {"role": "user", "content": "What is 3*3?"},
            {"role": "assistant", "content": "3*3 = 9. Wait, let me re-check: yes. \\boxed{9}"},
        ]
    },
    {
        "prompt": [{"role": "user", "content": "What is 10-7?"}],
        "completion": [{"role": "assistant", "content": "10-7 = 3. \\boxed{3}"}],
    },
    {
        "prompt": [{"role": "user", "content": "Half of 8?"}],
        "completion": [{"role": "assistant", "content": "8/2 = 4. \\boxed{4}"}],
    },
]
DPO_ROWS = [
    {
        "prompt": [{"role": "user", "content": "What is 2+2?"}],
        "chosen": [{"role": "assistant", "content": "2+2 = 4. \\boxed{4}"}],
        "rejected": [{"role": "assistant", "content": "2+2 = 5. \\boxed{5}"}],
    },
    {"prompt": "What is 3*3?", "chosen": "3*3 = 9. \\boxed{9}", "rejected": "\\boxed{6}"},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- data ------------------------------------------------------------------------------


def test_sft_rows_become_prompt_completion(tmp_path: Path) -> None:
    rows = load_sft_rows(write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS))
    assert len(rows) == 4
    # A messages row is split at its last assistant reply: the loss falls on that reply only.
    assert [m["role"] for m in rows[1]["prompt"]] == ["system", "user"]
    assert rows[1]["completion"] == [SFT_ROWS[1]["messages"][2]]  # type: ignore[index]


def test_dpo_rows_accept_plain_strings(tmp_path: Path) -> None:
    rows = load_dpo_rows(write_jsonl(tmp_path / "dpo.jsonl", DPO_ROWS))
    assert rows[1]["prompt"] == [{"role": "user", "content": "What is 3*3?"}]
    assert rows[1]["rejected"] == [{"role": "assistant", "content": "\\boxed{6}"}]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"text": "hi"}', "expected 'messages', or 'prompt' and 'completion' (fields: text)"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "needs an assistant message"),
        ('{"messages": [{"role": "bot", "content": "hi"}]}', "messages[0] has role 'bot'"),
        ('{"messages": [{"role": "user", "content": 3}]}', "content must be a string, got int"),
        (
            '{"prompt": "q", "completion": [{"role": "user", "content": "a"}]}',
            "assistant messages only",
        ),
    ],
)
def test_bad_sft_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps(SFT_ROWS[0]) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as raised:
        load_sft_rows(path)
    assert str(raised.value).startswith(f"{path}:3: ") and message in str(raised.value)


def test_bad_dpo_lines_and_files(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dpo.jsonl", [{"prompt": "q", "chosen": "a"}])
    with pytest.raises(DatasetError, match=r"dpo.jsonl:1: no 'rejected' field"):
        load_dpo_rows(path)
    same = write_jsonl(tmp_path / "same.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "a"}])
    with pytest.raises(DatasetError, match="are the same"):
        load_dpo_rows(same)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dpo_rows(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="holds no rows"):
        load_sft_rows(tmp_path / "empty.jsonl")


# --- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data_file": ""}, "a training data file is needed"),
        ({"learning_rate": -1.0}, "learning rate must be positive, got -1.0"),
        ({"per_device_train_batch_size": 0}, "batch size must be at least 1, got 0"),
        ({"gradient_accumulation_steps": 0}, "gradient accumulation must be at least 1, got 0"),
        ({"max_steps": 0}, "max_steps must be positive (or -1), got 0"),
        ({"max_length": 2}, "max_length must be at least 8, got 2"),
        ({"lora_rank": 0}, "lora_rank must be at least 1, got 0"),
        ({"lora_dropout": 1.0}, "lora_dropout must be in [0, 1), got 1.0"),
    ],
)
def test_sft_config_validation_quotes_the_bad_value(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    pytest.importorskip("trl")
    from journey.training import SFTTrainingConfig

    base: dict[str, object] = {"output_dir": str(tmp_path), "data_file": "d.jsonl"}
    with pytest.raises(ConfigError) as raised:
        SFTTrainingConfig(**{**base, **settings})  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_precision_and_dpo_beta(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from journey.training import DPOTrainingConfig, SFTTrainingConfig, gpu_supports_bf16

    config = SFTTrainingConfig(output_dir=str(tmp_path), data_file="d.jsonl", max_length=64)
    assert config.bf16 is gpu_supports_bf16()  # never TRL's bf16-on-CPU default
    assert config.max_length == 64 and config.report_to == []
    with pytest.raises(ConfigError, match=r"beta must be positive, got 0\.0"):
        DPOTrainingConfig(output_dir=str(tmp_path), data_file="d.jsonl", beta=0.0)


def test_only_local_models_can_be_trained() -> None:
    pytest.importorskip("trl")
    from journey.training import model_directory

    with pytest.raises(ConfigError, match="needs local weights"):
        model_directory("openai:gpt-4o")


def test_train_cli_reports_bad_data_as_a_user_error(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    result = runner.invoke(
        app, ["train", "sft", "--data", str(bad), "--out", str(tmp_path / "o"), "--max-steps", "1"]
    )
    assert isinstance(result.exception, DatasetError)
    assert "bad.jsonl:1:" in str(result.exception)


@pytest.mark.parametrize(("flags", "bar"), [([], True), (["--no-progress"], False)])
def test_no_progress_turns_the_trainers_bar_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], bar: bool
) -> None:
    # A progress bar in a log file is a line of carriage returns per step.
    pytest.importorskip("trl")
    from datasets.utils.logging import is_progress_bar_enabled

    import journey.training.sft as sft

    seen: list[bool] = []

    class Recorded(Exception):
        """Stops the command once the config is seen: nothing needs training."""

    def record(config: object, log: object = None) -> None:
        seen.append(getattr(config, "disable_tqdm"))  # noqa: B009  # a TRL field
        seen.append(not is_progress_bar_enabled())  # the `datasets` passes' bars too
        raise Recorded

    monkeypatch.setattr(sft, "train_sft", record)
    data = write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)
    result = runner.invoke(
        app, ["train", "sft", "--data", str(data), "--out", str(tmp_path / "m"), *flags]
    )
    assert isinstance(result.exception, Recorded)
    assert seen == [not bar, not bar]
    assert is_progress_bar_enabled()  # as it was, once the command is done


# --- end to end on the embedded model --------------------------------------------------


def _train(tmp_path: Path, kind: str, rows: list[dict[str, object]], *extra: str) -> Path:
    data = write_jsonl(tmp_path / f"{kind}.jsonl", rows)
    out = tmp_path / f"{kind}-out"
    result = runner.invoke(
        app,
        ["train", kind, "--data", str(data), "--out", str(out), "--max-steps", "2",
         "--batch-size", "2", "--max-length", "96", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "journey-train.json").read_text())
    assert summary["steps"] == 2 and len(summary["loss_head"]) == 2
    assert summary["dtype"] == "float32" and summary["tokens_seen"] > 0
    # What `journey eval` follows to find the problems the model trained on.
    assert summary["data"] == str(data.resolve()) and summary["data_sha256"] == file_digest(data)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).is_file()
    return out


@pytest.mark.embedded
def test_sft_full_then_the_output_is_a_model_spec(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    out = _train(tmp_path, "sft", SFT_ROWS, "--lr", "1e-5")
    problems = write_jsonl(tmp_path / "p.jsonl", [{"problem": "What is 2+2?", "answer": "4"}])
    result = runner.invoke(
        app,
        ["eval", "--model", f"hf:{out}", "--dataset", str(problems), "--out",
         str(tmp_path / "eval"), "--max-new-tokens", "8", "--no-progress", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The model trained on this very problem, which the warning says on stderr alone.
    assert json.loads(result.stdout)["problems"] == 1
    assert "overlap: 1 of 1 problems" in result.stderr


@pytest.mark.embedded
def test_sft_lora_saves_a_merged_model(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    out = _train(tmp_path, "sft", SFT_ROWS, "--lora", "--lora-rank", "4", "--lr", "1e-4")
    assert not (out / "adapter_config.json").exists()  # merged: a plain model directory
    assert json.loads((out / "journey-train.json").read_text())["lora"] is True


@pytest.mark.embedded
def test_dpo_two_steps(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    _train(tmp_path, "dpo", DPO_ROWS, "--beta", "0.1")


def test_two_phase_recipe_checks_its_second_file_first(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    data = write_jsonl(tmp_path / "shortcut.jsonl", SFT_ROWS)
    result = runner.invoke(
        app,
        ["train", "sft", "--data", str(data), "--then", str(tmp_path / "missing.jsonl"),
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert isinstance(result.exception, DatasetError)
    assert not (tmp_path / "o").exists()  # nothing was trained


@pytest.mark.embedded
def test_two_phase_sft_starts_phase_two_from_phase_one(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    shortcut = write_jsonl(tmp_path / "shortcut.jsonl", SFT_ROWS[:2])
    journey_data = write_jsonl(tmp_path / "journey.jsonl", SFT_ROWS[2:])
    out = tmp_path / "two-phase"
    result = runner.invoke(
        app,
        ["train", "sft", "--data", str(shortcut), "--then", str(journey_data), "--out", str(out),
         "--max-steps", "1", "--batch-size", "2", "--max-length", "96"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    phase1 = json.loads((out / "phase1" / "journey-train.json").read_text())
    phase2 = json.loads((out / "journey-train.json").read_text())
    assert phase1["model"] == "embedded" and phase1["data"] == str(shortcut)
    assert phase2["model"] == f"hf:{out / 'phase1'}" and phase2["data"] == str(journey_data)
