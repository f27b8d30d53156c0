"""The markers of `journey iterate`'s steps: a copied iteration folder is still done.

The equal-tokens comparison starts from a copy of a finished iteration
(docs/experiment.md); a marker that spelt out its folder made the copy train and
evaluate everything again, and named the original's models as the copy's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from journey.training.iterate_steps import OUT, Step, inputs_digest


def _step(out: Path, **inputs: object) -> Step:
    return Step(
        "round 1 · train journey",
        out / "round-1/models/journey/iterate-step.json",
        {"data": str(out / "round-1/exports/journey.jsonl"), **inputs},
        outputs=[out / "round-1/models/journey"],
        out=out,
    )


def _trained(out: Path) -> Step:
    step = _step(out)
    (out / "round-1/models/journey").mkdir(parents=True)
    step.finish({"spec": f"hf:{out}/round-1/models/journey", "rows": 3})
    return step


def test_a_copied_folder_is_done_and_its_models_are_its_own(tmp_path: Path) -> None:
    first = _trained(tmp_path / "rows")
    written = first.marker.read_text()
    assert str(tmp_path) not in written and f"hf:{OUT}/round-1" in written

    shutil.copytree(tmp_path / "rows", tmp_path / "rows-tokens")
    marker = _step(tmp_path / "rows-tokens").done()
    assert marker is not None
    assert marker.result == {"spec": f"hf:{tmp_path}/rows-tokens/round-1/models/journey", "rows": 3}
    assert _step(tmp_path / "rows-tokens", lr=1.0).done() is None  # other inputs: run again


def test_a_relative_folder_never_matches_a_sibling_or_a_longer_name(tmp_path: Path) -> None:
    step = Step("s", tmp_path / "marker.json", {}, out=Path("p5"))
    texts = ["p5/round-1", "hf:p5/a", "p5", "p5-tokens/round-1", "xp5/a", "a/p5/b", "p55/a"]
    step.finish({"texts": texts})
    assert json.loads(step.marker.read_text())["result"]["texts"] == [
        f"{OUT}/round-1",
        f"hf:{OUT}/a",
        OUT,
        "p5-tokens/round-1",
        "xp5/a",
        "a/p5/b",
        "p55/a",
    ]


def test_a_marker_from_before_relocation_counts_and_is_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "it"
    step = _step(out)
    (out / "round-1/models/journey").mkdir(parents=True)
    legacy = {
        "step": step.name,
        "digest": inputs_digest(step.inputs),  # the folder spelt out, as markers once were
        "inputs": dict(step.inputs),
        "result": {"spec": f"hf:{out}/round-1/models/journey"},
        "finished": "2026-12-03T10:00:00+00:00",
    }
    step.marker.write_text(json.dumps(legacy))

    work = out / "round-1/models/journey/weights"
    work.write_text("kept")
    outputs_gone = Step(
        step.name, step.marker, step.inputs, outputs=[out / "missing"], out=out, work=[work]
    )
    outputs_gone.begin()  # the same inputs, spelt as before: its work is not another run's
    assert work.read_text() == "kept"
    step.marker.write_text(json.dumps(legacy))

    marker = step.done()
    assert marker is not None and marker.result == legacy["result"]
    rewritten = json.loads(step.marker.read_text())
    assert rewritten["digest"] == step.digest != legacy["digest"]
    assert rewritten["finished"] == legacy["finished"] and str(out) not in json.dumps(rewritten)


def test_without_a_folder_or_in_the_current_one_paths_stay_as_they_are(tmp_path: Path) -> None:
    inputs = {"data": "round-1/exports/journey.jsonl"}
    plain = Step("s", tmp_path / "a.json", inputs)
    here = Step("s", tmp_path / "b.json", inputs, out=Path("."))
    assert plain.digest == here.digest == inputs_digest(inputs)
    here.finish({"spec": "hf:round-1/models/journey"})
    assert json.loads(here.marker.read_text())["result"] == {"spec": "hf:round-1/models/journey"}


def test_work_left_by_other_inputs_is_removed_before_the_step_runs(tmp_path: Path) -> None:
    """An evaluation whose model was trained again must not resume the old one's answers;
    one killed with the same inputs resumes them."""
    folder = tmp_path / "it/round-1/eval/journey"

    def evaluation(model: str) -> Step:
        return Step(
            "eval",
            folder / "iterate-step.json",
            {"model": model},
            outputs=[folder / "metrics.json"],
            out=tmp_path / "it",
            work=[folder],
        )

    old = evaluation("trained at 10:00")
    old.begin()
    (folder / "records.jsonl").write_text("an answer\n")
    old.finish({"correct": 1})
    (folder / "metrics.json").write_text("{}")
    assert old.done() is not None

    new = evaluation("trained at 11:00")
    assert new.done() is None
    new.begin()
    assert not (folder / "records.jsonl").exists() and new.done() is None  # begun, not done
    (folder / "records.jsonl").write_text("half\n")  # then killed
    new.begin()
    assert (folder / "records.jsonl").read_text() == "half\n"  # the same inputs: resumed

    (folder / "iterate-step.json").unlink()  # no marker says whose the work is
    evaluation("trained at 12:00").begin()
    assert (folder / "records.jsonl").exists()
