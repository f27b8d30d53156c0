"""`journey merge`: shard runs into one, duplicates, unfinished sessions, idempotence."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_runner import KINDS, dataset, synthesise
from typer.testing import CliRunner

from journey.agents.backends.response_store import ResponseStore
from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.exports.export import ExportOptions, export_runs
from journey.problems import ProblemRecord
from journey.runs import RunDirectory, read_event_log
from journey.runs.merge import merge_runs
from journey.view.reports import render_merge_report

runner = CliRunner()


def index_ids(run: Path) -> list[str]:
    lines = (run / "sessions.jsonl").read_text().splitlines()
    return [json.loads(line)["session_id"] for line in lines if line.strip()]


def count_rows(cache: Path) -> int:
    return len(ResponseStore(cache, writer=None))


def unfinish(run: Path, session_id: str) -> None:
    """Make a finished session look killed mid-run: drop its index line and last event."""
    index = run / "sessions.jsonl"
    kept = [line for line in index.read_text().splitlines() if session_id not in line]
    index.write_text("".join(line + "\n" for line in kept))
    folder = run / "sessions" / session_id
    log = folder / "events.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    for name in ("tree.json", "transcript.md", "shortcut.md"):
        (folder / name).unlink(missing_ok=True)


@pytest.fixture
def problems(tmp_path: Path) -> list[ProblemRecord]:
    return dataset(tmp_path / "d.jsonl", KINDS)


@pytest.fixture
def shards(tmp_path: Path, problems: list[ProblemRecord]) -> list[Path]:
    """Two shard runs, as `--shard 0/2` and `--shard 1/2` would write them."""
    roots = [tmp_path / "s0", tmp_path / "s1"]
    for i, root in enumerate(roots):
        synthesise(root, problems[i::2])
    return roots


def test_shards_merge_into_one_run_like_an_unsharded_one(
    shards: list[Path], problems: list[ProblemRecord], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    report = merge_runs(shards, out)
    assert sorted(index_ids(out)) == sorted(p.session_id for p in problems)
    assert report.added_finished == 6 and report.finished == 6 and report.unfinished == 0
    assert [s.finished for s in report.sources] == [3, 3]
    for p in problems:
        folder = out / "sessions" / p.session_id
        assert (folder / "tree.json").is_file() and read_event_log(folder / "events.jsonl").finished
    meta = json.loads((out / "run.json").read_text())
    source_meta = json.loads((shards[0] / "run.json").read_text())
    assert meta["command"] == "synth" and meta["models"] == source_meta["models"]
    assert [s["path"] for s in meta["merged"][0]["sources"]] == [str(s) for s in shards]
    # The merged run is a run like any other: it exports, and resumes as done but for its
    # model_error session, which runs again.
    card = export_runs([out], tmp_path / "sft.jsonl", ExportOptions(format="sft"))
    assert card.rows == 4
    # The shards' response caches merge too: the merged run answers from them.
    stored = sum(count_rows(shard / "cache") for shard in shards)
    assert report.cached_responses == stored > 0 and count_rows(out / "cache") == stored
    resumed = synthesise(out, problems)
    assert (resumed.skipped, resumed.retried, resumed.ran) == (5, 1, 1)
    assert sorted(index_ids(out)) == sorted(p.session_id for p in problems)
    assert merge_runs(shards, out).cached_responses == 0  # nothing new the second time


def test_merging_again_adds_only_what_is_new(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge_runs(shards[:1], out)
    before = (out / "sessions.jsonl").read_text()
    again = merge_runs(shards[:1], out)
    assert again.added_finished == again.added_unfinished == 0 and again.already_present == 3
    assert (out / "sessions.jsonl").read_text() == before
    more = merge_runs(shards, out)
    assert more.added_finished == 3 and more.already_present == 3 and more.finished == 6
    assert len(index_ids(out)) == len(set(index_ids(out))) == 6
    assert len(json.loads((out / "run.json").read_text())["merged"]) == 3


def test_a_session_twice_keeps_the_finished_copy_and_counts_duplicates(
    shards: list[Path], problems: list[ProblemRecord], tmp_path: Path
) -> None:
    # s0 again, with one session unfinished: the finished copy in s0 wins.
    partial = tmp_path / "partial"
    shutil.copytree(shards[0], partial)
    sid = problems[0].session_id
    unfinish(partial, sid)
    out = tmp_path / "merged"
    report = merge_runs([partial, shards[0], shards[1]], out)
    assert report.added_unfinished == 0 and report.added_finished == 6
    assert report.duplicates == 2 and report.unfinished == 0
    assert sorted(index_ids(out)) == sorted(p.session_id for p in problems)
    assert (out / "sessions" / sid / "tree.json").is_file()


def test_unfinished_sessions_are_copied_and_can_be_resumed(
    shards: list[Path], problems: list[ProblemRecord], tmp_path: Path
) -> None:
    sid = problems[1].session_id  # the reflect session, in shard 1
    unfinish(shards[1], sid)
    out = tmp_path / "merged"
    report = merge_runs(shards, out)
    assert report.unfinished == 1 and report.added_unfinished == 1 and report.finished == 5
    assert sid not in index_ids(out) and (out / "sessions" / sid / "events.jsonl").is_file()
    resumed = synthesise(out, problems)
    assert (resumed.skipped, resumed.resumed, resumed.retried) == (4, 1, 1)
    assert sorted(index_ids(out)) == sorted(p.session_id for p in problems)


def test_a_shard_finished_later_replaces_its_unfinished_copy(
    shards: list[Path], problems: list[ProblemRecord], tmp_path: Path
) -> None:
    saved = tmp_path / "saved"
    shutil.copytree(shards[1], saved)
    sid = problems[1].session_id
    unfinish(shards[1], sid)
    out = tmp_path / "merged"
    merge_runs(shards, out)
    shutil.rmtree(shards[1])
    shutil.copytree(saved, shards[1])  # the shard was resumed and finished meanwhile
    report = merge_runs(shards, out)
    assert report.replaced == 1 and report.unfinished == 0 and report.finished == 6
    assert sid in index_ids(out) and (out / "sessions" / sid / "transcript.md").is_file()


def test_runs_of_other_models_are_refused_unless_forced(
    tmp_path: Path, problems: list[ProblemRecord]
) -> None:
    synthesise(tmp_path / "a", problems[:2])
    synthesise(tmp_path / "b", problems[2:4], critic_mode="auto")
    with pytest.raises(ConfigError, match=r"critic_mode 'auto'.*--force"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out", force=True)
    assert report.finished == 4 and report.forced
    assert json.loads((tmp_path / "out" / "run.json").read_text())["merged"][0]["forced"]
    # An existing merged run keeps its own options as the reference.
    with pytest.raises(ConfigError, match="critic_mode"):
        merge_runs([tmp_path / "b"], tmp_path / "out")


def test_bad_paths(tmp_path: Path, problems: list[ProblemRecord]) -> None:
    synthesise(tmp_path / "a", problems[:1])
    with pytest.raises(DatasetError, match="not a run directory"):
        merge_runs([tmp_path / "a", tmp_path], tmp_path / "out")
    with pytest.raises(ConfigError, match="also a source"):
        merge_runs([tmp_path / "a"], tmp_path / "a")
    with pytest.raises(ConfigError, match="at least one"):
        merge_runs([], tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        merge_runs([tmp_path / "a"], tmp_path / "file")
    assert not (tmp_path / "out").exists()


def test_a_non_synth_run_merges_too(tmp_path: Path, problems: list[ProblemRecord]) -> None:
    RunDirectory(tmp_path / "empty", meta={"command": "test"})
    report = merge_runs([tmp_path / "empty"], tmp_path / "out")
    assert report.finished == 0 and (tmp_path / "out" / "sessions.jsonl").read_text() == ""


def test_merge_command_prints_a_summary(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = runner.invoke(app, ["merge", *map(str, shards), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "merged run" in result.output and "6 finished and 0 unfinished added" in result.output
    result = runner.invoke(app, ["merge", *map(str, shards), "--out", str(out), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["already_present"] == 6
    console = Console(file=io.StringIO(), width=100)
    console.print(render_merge_report(merge_runs(shards, out)))
    assert "6 already present" in console.file.getvalue()  # type: ignore[attr-defined]
