"""The run manifest every resumable job keeps: written once, checked and extended on
each resume, refused in one line that names each change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey.errors import ConfigError
from journey.runs.manifest import (
    Manifest,
    SettingChange,
    absent_as_default,
    read_manifest,
    setting_changes,
)


def test_settings_may_not_change_unless_free_or_forced(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"

    def open_(settings: dict[str, str], **options: bool) -> None:
        free = {"dataset"} if options.pop("free", False) else set()
        Manifest("eval", settings, free=free).open(path, subject="run", **options)

    open_({"model": "a", "dataset": "x"})
    open_({"model": "a", "dataset": "y"}, free=True)
    with pytest.raises(ConfigError, match=r"run made with other settings \(model: 'a' -> 'b'\)"):
        open_({"model": "b", "dataset": "y"})
    open_({"model": "b", "dataset": "y"}, force=True)
    assert '"model": "b"' in path.read_text()


def test_each_run_is_recorded_and_a_resume_matches_the_latest(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    first = Manifest("pairs", {"model": "a", "batch": 8}, free={"batch"})
    assert first.open(path, subject="samples") == []
    meta = json.loads(path.read_text())
    assert meta["command"] == "pairs" and "created" in meta and "journey_version" in meta
    assert (meta["model"], meta["batch"]) == ("a", 8) and "resumed" not in meta
    forced = Manifest("pairs", {"model": "b", "batch": 4}, free={"batch"}).open(
        path, subject="samples", force=True
    )
    assert forced == [SettingChange("model", "a", "b")]
    # The same settings again resume without force: the forced run is the latest.
    Manifest("pairs", {"model": "b", "batch": 2}, free={"batch"}).open(path, subject="samples")
    with pytest.raises(ConfigError, match=r"^samples made with .*\(model: 'b' -> 'a'\); use "):
        first.open(path, subject="samples")
    meta = json.loads(path.read_text())
    assert meta["model"] == "a"  # the top keeps the first run
    assert [(r["model"], r["batch"], r.get("forced")) for r in meta["resumed"]] == [
        ("b", 4, ["model: 'a' -> 'b'"]),
        ("b", 2, None),
    ]
    recorded = read_manifest(path)
    assert recorded is not None and recorded.current["batch"] == 2


def test_another_kind_is_refused_and_no_kind_is_an_older_manifest(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    Manifest("debate", {"models": {}}).open(path, subject="run")
    with pytest.raises(ConfigError, match="'journey debate', not 'journey synth'"):
        Manifest("synth", {"models": {}}).open(path, subject="run")
    older = tmp_path / "eval.json"  # written before manifests recorded their kind
    older.write_text(json.dumps({"model": "m", "dataset": "d"}))
    Manifest("eval", {"model": "m", "dataset": "e"}, free={"dataset"}).open(older, subject="x")
    assert json.loads(older.read_text())["resumed"][0]["dataset"] == "e"


def test_changes_inside_a_mapping_are_named_by_their_path() -> None:
    recorded = {"models": {"policy": "a", "critic": "c"}, "sizes": [1, 2]}
    wanted = {"models": {"policy": "b", "critic": "c"}, "sizes": [1, 2]}
    assert setting_changes(recorded, wanted) == [SettingChange("models.policy", "a", "b")]
    # Settings compare as JSON keeps them: a tuple is the list read back.
    manifest = Manifest("x", {"sizes": (1, 2)})
    assert manifest.record == {"sizes": [1, 2]}


def test_an_unreadable_manifest_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=f"cannot read {path}"):
        Manifest("synth", {}).open(path, subject="run")


def test_a_setting_added_since_reads_as_its_default_on_resume(tmp_path: Path) -> None:
    """Upgrading journey refuses no run: a setting the older run did not record is what
    it did then, today's default; a recorded value still has to match."""
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"command": "eval", "model": "m"}))  # before `top_p` existed
    today = absent_as_default({"model": "embedded", "top_p": 1.0})
    Manifest("eval", {"model": "m", "top_p": 1.0}, read_as_today=today).open(path, subject="x")
    with pytest.raises(ConfigError, match=r"\(top_p: 1.0 -> 0.9\)"):
        Manifest("eval", {"model": "m", "top_p": 0.9}, read_as_today=today).open(path, subject="x")
    # Inside a mapping too: `layout.lines` was added since.
    nested = absent_as_default({"layout": {"field": "steps", "lines": False}})
    assert nested({"layout": {"field": "body"}}) == {"layout": {"field": "body", "lines": False}}
    with pytest.raises(ConfigError, match=r"\(model: 'm' -> 'embedded'\)"):
        Manifest("eval", {"model": "embedded", "top_p": 1.0}, read_as_today=today).open(
            path, subject="x"
        )
