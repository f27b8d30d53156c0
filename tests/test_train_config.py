"""`journey train --config FILE.yaml`: file values, flag precedence, errors, phases.

Training is replaced by a recorder, so these tests check the configs each phase would
train with and never load a model (one end-to-end run is marked `embedded`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from journey.cli import app
from journey.cli.train import _option_types, dpo, sft
from journey.errors import ConfigError, DatasetError
from journey.training.recipe import PhaseSpec, load_train_file, plan_phases
from tests.test_training import DPO_ROWS, SFT_ROWS, write_jsonl

runner = CliRunner()
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace SFT and DPO training with a recorder of the configs they receive."""
    pytest.importorskip("trl")
    import journey.cli.train
    import journey.training.dpo
    import journey.training.sft

    configs: list[Any] = []

    def record(config: Any, log: Any = None) -> None:
        configs.append(config)

    # `journey train` runs its phases through `journey.training.phases`, which calls these.
    monkeypatch.setattr(journey.training.sft, "train_sft", record)
    monkeypatch.setattr(journey.training.dpo, "train_dpo", record)
    monkeypatch.setattr(journey.cli.train, "_print_summary", lambda summary: None)
    return configs


def _files(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_jsonl(tmp_path / "shortcut.jsonl", SFT_ROWS[:2]),
        write_jsonl(tmp_path / "journey.jsonl", SFT_ROWS[2:]),
    )


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _invoke(*args: str | Path) -> Any:
    return runner.invoke(app, ["train", *map(str, args)])


def test_file_values_are_applied(tmp_path: Path, trained: list[Any]) -> None:
    data, _ = _files(tmp_path)
    recipe = _recipe(
        tmp_path,
        f"data: {data}\nout: {tmp_path / 'o'}\nepochs: 3\nlearning_rate: 1e-4\n"
        "batch-size: 2\nlora: true\nlora_rank: 4\nmax_length: 96\n",
    )
    result = _invoke("sft", "--config", recipe)
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert config.data_file == str(data) and config.output_dir == str(tmp_path / "o")
    assert config.num_train_epochs == 3.0 and config.learning_rate == 1e-4  # "1e-4": YAML 1.1
    assert config.per_device_train_batch_size == 2 and config.max_length == 96
    assert config.lora and config.lora_rank == 4 and config.lora_alpha == 8
    assert config.seed == 42 and config.model_spec == "embedded"  # untouched defaults


def test_flags_given_override_the_file(tmp_path: Path, trained: list[Any]) -> None:
    data, other = _files(tmp_path)
    recipe = _recipe(tmp_path, f"data: {data}\nout: {tmp_path / 'o'}\nepochs: 3\nseed: 7\n")
    # --seed 42 equals the default: it still counts as given and beats the file's 7.
    result = _invoke("sft", "--config", recipe, "--epochs", "1", "--seed", "42", "--data", other)
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert config.num_train_epochs == 1.0 and config.seed == 42
    assert config.data_file == str(other)


def test_dpo_reads_its_own_options(tmp_path: Path, trained: list[Any]) -> None:
    pairs = write_jsonl(tmp_path / "dpo.jsonl", DPO_ROWS)
    recipe = _recipe(tmp_path, f"data: {pairs}\nout: {tmp_path / 'd'}\nbeta: 0.3\nlr: 5.0e-7\n")
    result = _invoke("dpo", "--config", recipe, "--max-steps", "2")
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert config.beta == 0.3 and config.learning_rate == 5e-7 and config.max_steps == 2
    # beta is a DPO option only: an SFT recipe may not set it.
    result = _invoke("sft", "--config", recipe)
    assert isinstance(result.exception, ConfigError)
    assert "unknown key 'beta'" in str(result.exception)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochz: 3\n", "recipe.yaml: unknown key 'epochz'"),
        ("epochs: many\n", "recipe.yaml: 'epochs' must be a number, got 'many'"),
        ("max_steps: 2.5\n", "recipe.yaml: 'max_steps' must be an integer, got 2.5"),
        ("lora: 1\n", "recipe.yaml: 'lora' must be true or false, got 1"),
        ("lr: 1.0e-5\nlearning_rate: 2.0e-5\n", "'lr' is set twice"),
        ("config: other.yaml\n", "unknown key 'config'"),
        ("- epochs\n", "must be a mapping"),
        ("epochs: [1\n", "not valid YAML (line 2)"),
        ("phases: []\n", "'phases' must be a non-empty list"),
        ("phases:\n  - epochs: 2\n", "phase 1 needs a 'data' file"),
        ("phases:\n  - data: a.jsonl\n    out: x\n", "unknown key 'out' in phase 1"),
        ("data: a.jsonl\nphases: [b.jsonl]\n", "'phases' cannot be combined with 'data'"),
    ],
)
def test_bad_files_name_the_file_and_key(
    tmp_path: Path, trained: list[Any], text: str, message: str
) -> None:
    result = _invoke("sft", "--config", _recipe(tmp_path, text), "--out", tmp_path / "o")
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert trained == []


def test_a_missing_config_file_is_a_user_error(tmp_path: Path, trained: list[Any]) -> None:
    result = _invoke("sft", "--config", tmp_path / "nope.yaml")
    assert isinstance(result.exception, ConfigError)
    assert "nope.yaml" in str(result.exception)


def test_phases_chain_like_then(tmp_path: Path, trained: list[Any]) -> None:
    shortcut, journey_data = _files(tmp_path)
    out = tmp_path / "two"
    recipe = _recipe(
        tmp_path,
        f"out: {out}\nlr: 2.0e-5\nphases:\n"
        f"  - data: {shortcut}\n    epochs: 3\n"
        f"  - {journey_data}\n",  # the shorthand: a file name only
    )
    result = _invoke("sft", "--config", recipe)
    assert result.exit_code == 0, result.output
    first, second = trained
    assert (first.model_spec, first.data_file, first.output_dir) == (
        "embedded", str(shortcut), str(out / "phase1"),
    )  # fmt: skip
    assert (second.model_spec, second.data_file, second.output_dir) == (
        f"hf:{out / 'phase1'}", str(journey_data), str(out),
    )  # fmt: skip
    assert first.num_train_epochs == 3.0 and second.num_train_epochs == 1.0
    assert first.learning_rate == second.learning_rate == 2e-5
    # The same plan as --data A --then B: one code path.
    trained.clear()
    result = _invoke("sft", "--data", shortcut, "--then", journey_data, "--out", out)
    assert result.exit_code == 0, result.output
    assert [(c.model_spec, c.data_file, c.output_dir) for c in trained] == [
        (first.model_spec, first.data_file, first.output_dir),
        (second.model_spec, second.data_file, second.output_dir),
    ]


def test_flags_override_per_phase_values_and_conflict_with_phases(
    tmp_path: Path, trained: list[Any]
) -> None:
    shortcut, journey_data = _files(tmp_path)
    recipe = _recipe(
        tmp_path,
        f"out: {tmp_path / 'o'}\nphases:\n"
        f"  - {{data: {shortcut}, epochs: 3}}\n"  # flow style, as a one-liner recipe might
        f"  - {journey_data}\n",
    )
    result = _invoke("sft", "--config", recipe, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert [c.num_train_epochs for c in trained] == [2.0, 2.0]
    result = _invoke("sft", "--config", recipe, "--then", journey_data)
    assert isinstance(result.exception, ConfigError)
    assert "'phases' cannot be combined with --then" in str(result.exception)


def test_every_phase_file_is_checked_before_training(tmp_path: Path, trained: list[Any]) -> None:
    shortcut, _ = _files(tmp_path)
    missing = tmp_path / "missing.jsonl"
    recipe = _recipe(tmp_path, f"out: {tmp_path / 'o'}\nphases: [{shortcut}, {missing}]\n")
    result = _invoke("sft", "--config", recipe)
    assert isinstance(result.exception, DatasetError) and "missing.jsonl" in str(result.exception)
    assert trained == []


def test_plan_phases_chains_n_phases() -> None:
    specs = [PhaseSpec(Path(f"{n}.jsonl"), {}) for n in "abc"]
    plan = plan_phases("embedded", Path("m"), specs)
    assert [(p.model, p.out) for p in plan] == [
        ("embedded", Path("m/phase1")),
        ("hf:m/phase1", Path("m/phase2")),
        ("hf:m/phase2", Path("m")),
    ]
    assert plan_phases("embedded", Path("m"), specs[:1])[0].out == Path("m")


@pytest.mark.parametrize(("name", "command"), [("seed-sft.yaml", sft), ("seed-dpo.yaml", dpo)])
def test_shipped_recipes_are_valid(name: str, command: Any) -> None:
    recipe = load_train_file(RECIPES / name, _option_types(command))
    assert recipe.settings["out"].parts[0] == "models"
    if command is sft:
        assert recipe.phases is not None
        assert [p.data.name for p in recipe.phases] == ["shortcut.jsonl", "journey.jsonl"]


@pytest.mark.embedded
def test_a_phases_recipe_trains_on_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    shortcut, journey_data = _files(tmp_path)
    out = tmp_path / "recipe-out"
    recipe = _recipe(
        tmp_path,
        f"out: {out}\nmax_steps: 1\nbatch_size: 2\nmax_length: 96\n"
        f"phases: [{shortcut}, {journey_data}]\n",
    )
    result = _invoke("sft", "--config", recipe)
    assert result.exit_code == 0, result.output
    phase2 = json.loads((out / "journey-train.json").read_text())
    assert phase2["model"] == f"hf:{out / 'phase1'}" and phase2["steps"] == 1
    assert (out / "phase1" / "model.safetensors").is_file()
