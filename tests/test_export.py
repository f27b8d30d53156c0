"""`journey export`: SFT, shortcut, DPO and PRM rows from synth runs, filters, the card.

The run is a real `journey synth` run over the deterministic fake models of
`test_runner` (plain, reflect, backtrack, wrongfinal, stuck, explode), so every
export reads what the runner writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_runner import KINDS, dataset, synthesise
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.exports._finished_session import FinishedSession
from journey.exports._row_selection import RowSelection
from journey.exports.export import (
    EmptyExportError,
    ExportOptions,
    card_path,
    count_tokens_cheaply,
    export_runs,
    load_card,
)
from journey.exports.rows import (
    DEFAULT_INSTRUCTION,
    preference_pairs,
    stepwise_rows,
    with_boxed_answer,
)
from journey.longthought.writer import LongThought
from journey.protocols import StepVerdict
from journey.sessions import ReasoningTree

runner = CliRunner()

SOLVED_KINDS = ("plain", "reflect", "backtrack", "wrongfinal")


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished synth run of every kind; tests that change it work on a copy."""
    base = tmp_path_factory.mktemp("export")
    synthesise(base / "run", dataset(base / "d.jsonl", KINDS))
    return base / "run"


@pytest.fixture
def run_copy(synth_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(synth_run, tmp_path / "run")
    return tmp_path / "run"


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def kind_of(text: str) -> str:
    return text.split("(", 1)[1].split(")", 1)[0]


def session_ids_by_kind(run: Path) -> dict[str, str]:
    out = {}
    for line in (run / "sessions.jsonl").read_text().splitlines():
        summary = json.loads(line)
        out[kind_of(summary["problem"])] = summary["session_id"]
    return out


def export(run: Path | list[Path], out: Path, **options: Any) -> list[dict[str, Any]]:
    options.setdefault("format", "sft")
    export_runs(run if isinstance(run, list) else [run], out, ExportOptions(**options))
    return rows(out)


# -- sft and shortcut ------------------------------------------------------------------------


def test_sft_rows_are_the_problem_and_the_long_thought(synth_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    got = export(synth_run, out, format="sft")
    assert sorted(kind_of(r["prompt"][0]["content"]) for r in got) == sorted(SOLVED_KINDS)
    ids = session_ids_by_kind(synth_run)
    for row in got:
        assert set(row) == {"prompt", "completion"}
        [user], [assistant] = row["prompt"], row["completion"]
        assert user["role"] == "user" and user["content"].endswith(DEFAULT_INSTRUCTION)
        transcript = synth_run / "sessions" / ids[kind_of(user["content"])] / "transcript.md"
        assert assistant == {"role": "assistant", "content": transcript.read_text().strip()}
    reflect = next(r for r in got if "(reflect)" in r["prompt"][0]["content"])
    assert "oops" in reflect["completion"][0]["content"]  # the wrong step stays in the journey
    card = load_card(card_path(out))
    assert card_path(out) == tmp_path / "sft.card.json"
    assert card.rows == 4 and card.sessions_seen == 6 and card.sessions_exported == 4
    assert card.skipped == {"outcome error": 1, "outcome failed": 1}
    assert card.format == "sft" and card.layout == "prompt-completion"
    assert card.strategies == ["debate"]
    assert card.models == {
        "critic": ["function:test_runner:fake_critic"],
        "policy": ["function:test_runner:fake_policy"],
    }
    assert card.source_runs == [str(synth_run)] and card.filters["only_verified"] is True
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary name
    assert not list(tmp_path.glob(".*.partial"))


def test_messages_layout(synth_run: Path, tmp_path: Path) -> None:
    [row, *_] = export(synth_run, tmp_path / "m.jsonl", format="sft", layout="messages")
    assert set(row) == {"messages"}
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]


def test_shortcut_rows_hold_the_accepted_path_alone(synth_run: Path, tmp_path: Path) -> None:
    got = export(synth_run, tmp_path / "s.jsonl", format="shortcut")
    reflect = next(r for r in got if "(reflect)" in r["prompt"][0]["content"])
    text = reflect["completion"][0]["content"]
    assert "oops" not in text and "Wait" not in text and "\\boxed{4}" in text
    assert text.startswith("Step 1:") and text.count("Step ") == 2


def test_sft_and_shortcut_share_their_problems_under_every_filter(
    run_copy: Path, tmp_path: Path
) -> None:
    ids = session_ids_by_kind(run_copy)
    forget_a_verdict(run_copy / "sessions" / ids["plain"] / "tree.json")
    for options in ({}, {"max_tokens": 60}, {"min_reflections": 1}, {"keywords": ("oops",)}):
        sft = tmp_path / "sft.jsonl"
        short = tmp_path / "short.jsonl"
        export(run_copy, sft, format="sft", allow_empty=True, **options)
        export(run_copy, short, format="shortcut", allow_empty=True, **options)
        sft_card, short_card = load_card(card_path(sft)), load_card(card_path(short))
        assert sft_card.session_ids == short_card.session_ids
        assert sft_card.skipped == short_card.skipped
        assert ids["plain"] not in sft_card.session_ids
        if not options:
            assert sft_card.skipped["path not accepted"] == 1
        if "max_tokens" in options:
            # Judged on the long thought in both formats: the shortcuts would all fit.
            assert sft_card.skipped["too long"] >= 1
            assert short_card.rows < 3


def test_without_same_problems_sft_keeps_sessions_without_a_shortcut(
    synth_run: Path, tmp_path: Path
) -> None:
    options = {"same_problems": False, "only_verified": False}
    got = export(synth_run, tmp_path / "sft.jsonl", format="sft", **options)
    assert {kind_of(r["prompt"][0]["content"]) for r in got} == {*SOLVED_KINDS, "stuck"}
    card = load_card(card_path(tmp_path / "sft.jsonl"))
    assert card.skipped == {"empty long thought": 1}  # explode: its policy never wrote a step
    short = export(synth_run, tmp_path / "s.jsonl", format="shortcut", **options)
    assert {kind_of(r["prompt"][0]["content"]) for r in short} == set(SOLVED_KINDS)


def forget_a_verdict(tree_path: Path) -> None:
    """Make the first step of a saved tree one nobody judged (a silent critic)."""
    record = json.loads(tree_path.read_text())
    first = next(n for n in record["nodes"] if n["depth"] == 1)
    first.update(verdict="unknown", label="unknown", label_source="none")
    tree_path.write_text(json.dumps(record))


def test_a_shortcut_without_a_boxed_answer_gets_one() -> None:
    assert with_boxed_answer("Step 1: 2 + 2 = 4.", "4").endswith("\\boxed{4}.")
    assert with_boxed_answer("Step 1: \\boxed{4}", "4") == "Step 1: \\boxed{4}"
    assert with_boxed_answer("Step 1: no answer", None) == "Step 1: no answer"


# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "kinds", "reason"),
    [
        ({"min_reflections": 1}, {"reflect", "wrongfinal"}, "too few reflections"),
        ({"min_backtracks": 1}, {"backtrack"}, "too few backtracks"),
        ({"keywords": ("go back to step",)}, {"backtrack"}, "keyword missing"),
        ({"keywords": ("step", "OOPS")}, {"reflect"}, "keyword missing"),
        (
            {"only_verified": False, "same_problems": False},
            set(KINDS) - {"explode"},
            None,
        ),  # explode wrote no step
    ],
)
def test_session_filters(
    synth_run: Path,
    tmp_path: Path,
    options: dict[str, Any],
    kinds: set[str],
    reason: str | None,
) -> None:
    got = export(synth_run, tmp_path / "f.jsonl", format="sft", **options)
    assert {kind_of(r["prompt"][0]["content"]) for r in got} == kinds
    card = load_card(card_path(tmp_path / "f.jsonl"))
    if reason:
        assert card.skipped[reason] == 4 - len(kinds)


def test_limit_and_max_tokens(synth_run: Path, tmp_path: Path) -> None:
    assert len(export(synth_run, tmp_path / "a.jsonl", format="sft", limit=2)) == 2
    assert load_card(card_path(tmp_path / "a.jsonl")).skipped["over limit"] == 4
    got = export(synth_run, tmp_path / "b.jsonl", format="sft", max_tokens=45)
    assert got and all(count_tokens_cheaply(r["completion"][0]["content"]) <= 45 for r in got)
    assert load_card(card_path(tmp_path / "b.jsonl")).skipped["too long"] >= 1
    huge = export_runs(
        [synth_run],
        tmp_path / "c.jsonl",
        ExportOptions(format="dpo", max_tokens=10),
        count_tokens=lambda text: 11 if "oops" in text else 0,  # a stand-in tokenizer
    )
    assert huge.rows == 2 and huge.skipped["too long"] == 1  # the reflect pair's rejected
    assert count_tokens_cheaply("one two three") == 3
    assert count_tokens_cheaply("x" * 400) == 100


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "csv"}, "unknown export format 'csv'"),
        ({"format": "sft", "layout": "chat"}, "unknown layout 'chat'"),
        ({"format": "sft", "min_reflections": -1}, "min_reflections must be 0 or more"),
        ({"format": "sft", "max_tokens": 0}, "max_tokens must be at least 1"),
        ({"format": "dpo", "max_pairs_per_session": 0}, "max_pairs_per_session must be"),
        ({"format": "sft", "keywords": ("(",)}, "bad keyword regex '('"),
        ({"format": "sft", "tokenizer": "gpt2"}, "unknown tokenizer 'gpt2'"),
    ],
)
def test_options_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ExportOptions(**options)


# -- dpo and prm -----------------------------------------------------------------------------


def test_dpo_pairs_come_from_failed_siblings_of_the_answer_path(
    synth_run: Path, tmp_path: Path
) -> None:
    got = export(synth_run, tmp_path / "dpo.jsonl", format="dpo")
    by_kind = {kind_of(r["prompt"][0]["content"]): r for r in got}
    assert sorted(by_kind) == ["backtrack", "reflect", "wrongfinal"]  # plain has no sibling
    for row in got:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert [m["role"] for m in row["prompt"]] == ["user", "assistant"]  # + shared step 1
        assert row["prompt"][1]["content"].startswith("Step 1: We add")
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert row["chosen"][0]["content"].startswith("Step 2:")
        assert "\\boxed" in row["chosen"][0]["content"]
    assert "oops" in by_kind["reflect"]["rejected"][0]["content"]
    backtrack = by_kind["backtrack"]["rejected"][0]["content"]
    assert "wrongly" in backtrack and "Step 3:" in backtrack and "late" in backtrack
    assert "\\boxed{9}" in by_kind["wrongfinal"]["rejected"][0]["content"]
    card = load_card(card_path(tmp_path / "dpo.jsonl"))
    assert card.skipped == {"no dpo rows": 1, "outcome error": 1, "outcome failed": 1}


def test_dpo_pairs_at_the_root_and_the_cap_per_session() -> None:
    tree = ReasoningTree("What is 3 * 4?", "12")
    wrong = tree.add_step("3 + 4 = 7, \\boxed{7}", final_answer="7")
    tree.record_verification(wrong.id, False)
    tree.add_step("3 * 4", parent_id=0)
    other = tree.add_step("maybe 3 - 4", parent_id=0)
    tree.judge(other.id, StepVerdict.INCORRECT, "no")
    tree.add_step("unjudged idea", parent_id=0)  # never judged or abandoned: no pair
    final = tree.add_step("= 12, \\boxed{12}", parent_id=2, final_answer="12")
    tree.record_verification(final.id, True)
    pairs = preference_pairs(tree, final.id)
    assert [[n.text for n in p.rejected] for p in pairs] == [
        ["3 + 4 = 7, \\boxed{7}"],
        ["maybe 3 - 4"],
    ]
    assert all(p.prefix == [] for p in pairs)
    assert [n.text for n in pairs[0].chosen] == ["3 * 4", "= 12, \\boxed{12}"]
    assert len(preference_pairs(tree, final.id, max_pairs=1)) == 1


def test_max_pairs_per_session(synth_run: Path, tmp_path: Path) -> None:
    got = export(synth_run, tmp_path / "dpo.jsonl", format="dpo", max_pairs_per_session=1)
    assert len(got) == 3


def test_prm_rows_label_each_step_and_stop_at_the_first_wrong_one(
    synth_run: Path, tmp_path: Path
) -> None:
    got = export(synth_run, tmp_path / "prm.jsonl", format="prm")
    assert all(set(r) == {"prompt", "completions", "labels", "label_sources"} for r in got)
    assert all(len(r["label_sources"]) == len(r["labels"]) for r in got)
    assert all(isinstance(r["prompt"], str) for r in got)
    assert all(len(r["completions"]) == len(r["labels"]) for r in got)
    reflect = [r for r in got if "(reflect)" in r["prompt"]]
    assert sorted(r["labels"] for r in reflect) == [[True, False], [True, True]]
    assert all(r["labels"].count(False) <= 1 and r["labels"][-1] in (True, False) for r in got)
    assert all(False not in r["labels"][:-1] for r in got)
    stuck = [r for r in got if "(stuck)" in r["prompt"]]
    assert stuck and all(r["labels"][-1] is False for r in stuck)  # wrong guesses
    card = load_card(card_path(tmp_path / "prm.jsonl"))
    assert card.filters["only_verified"] is False and card.layout is None


@pytest.mark.parametrize("fmt", ["prm", "revision"])
def test_step_rows_write_a_long_thought_only_to_search_it(
    synth_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """prm and revision rows hold single steps: no session's long thought is written for
    them, unless a keyword filter searches it."""
    written: list[str] = []
    real = RowSelection._long_thought

    def counted(self: RowSelection, s: FinishedSession) -> tuple[LongThought, str]:
        written.append(s.summary.session_id)
        return real(self, s)

    monkeypatch.setattr(RowSelection, "_long_thought", counted)
    export_runs([synth_run], tmp_path / "all.jsonl", ExportOptions(format=fmt, allow_empty=True))
    assert written == []
    options = ExportOptions(format=fmt, keywords=("wait",), allow_empty=True)
    card = export_runs([synth_run], tmp_path / "kw.jsonl", options)
    assert sorted(written) == sorted(session_ids_by_kind(synth_run).values())  # every one
    assert card.skipped.get("keyword missing", 0) >= 1


def test_prm_skips_paths_with_unlabelled_steps() -> None:
    tree = ReasoningTree("p")
    tree.add_step("a")
    assert stepwise_rows(tree) == []


# -- bad sessions and bad paths --------------------------------------------------------------


def test_bad_sessions_are_skipped_and_counted(run_copy: Path, tmp_path: Path) -> None:
    ids = session_ids_by_kind(run_copy)
    (run_copy / "sessions" / ids["plain"] / "tree.json").write_text("{not json")
    log = run_copy / "sessions" / ids["reflect"] / "events.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))  # no session_ended
    (run_copy / "sessions" / ids["backtrack"] / "transcript.md").unlink()
    unfinished = run_copy / "sessions" / "cafe00000000"
    unfinished.mkdir()
    (unfinished / "events.jsonl").write_text("")
    got = export(run_copy, tmp_path / "sft.jsonl", format="sft")
    # The long thought is written from the log: a lost transcript.md loses nothing.
    assert [kind_of(r["prompt"][0]["content"]) for r in got] == ["backtrack", "wrongfinal"]
    card = load_card(card_path(tmp_path / "sft.jsonl"))
    assert card.skipped == {
        "no session_ended": 1,
        "outcome error": 1,
        "outcome failed": 1,
        "unfinished": 1,
        "unreadable tree.json": 1,
    }
    assert card.sessions_seen == 7


def test_a_session_in_two_runs_is_exported_once(synth_run: Path, tmp_path: Path) -> None:
    got = export([synth_run, synth_run], tmp_path / "sft.jsonl", format="sft")
    assert len(got) == 4
    assert load_card(card_path(tmp_path / "sft.jsonl")).skipped["duplicate"] == 6


def test_sessions_of_held_out_problems_are_left_out_and_counted(
    synth_run: Path, tmp_path: Path
) -> None:
    """An evaluation set named at export: its problems never reach a training row, however
    the run came by them; spelling and case do not hide a problem."""
    summaries = [
        json.loads(line) for line in (synth_run / "sessions.jsonl").read_text().splitlines()
    ]
    held = next(s for s in summaries if kind_of(s["problem"]) == "reflect")
    evaluation = tmp_path / "eval.jsonl"
    spelled_otherwise = "  ".join(held["problem"].upper().split(" "))
    evaluation.write_text(json.dumps({"problem": spelled_otherwise, "answer": "1"}) + "\n")

    out = tmp_path / "sft.jsonl"
    result = runner.invoke(
        app,
        ["export", str(synth_run), "-o", str(out), "--held-out", str(evaluation), "--json"],
    )
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["skipped"]["held out"] == 1
    assert card["held_out"] == {"source": str(evaluation), "problems": 1}
    assert held["session_id"] not in card["session_ids"] and card["rows"] == 3
    assert all(held["problem"] not in json.dumps(row) for row in rows(out))

    result = runner.invoke(app, ["export", str(synth_run), "-o", str(out), "--json"])
    assert json.loads(result.output)["rows"] == 4 and "held out" not in result.output


def test_a_path_that_is_not_a_run_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a run directory"):
        export_runs([tmp_path], tmp_path / "x.jsonl", ExportOptions(format="sft"))
    with pytest.raises(DatasetError, match="no run directory"):
        export_runs([tmp_path / "nope"], tmp_path / "x.jsonl", ExportOptions(format="sft"))
    assert not (tmp_path / "nope").exists() and not (tmp_path / "x.jsonl").exists()


# -- loading with datasets, and the command --------------------------------------------------


@pytest.mark.parametrize("fmt", ["sft", "shortcut", "dpo", "prm"])
def test_every_format_loads_with_datasets(synth_run: Path, tmp_path: Path, fmt: str) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / f"{fmt}.jsonl"
    written = export(synth_run, out, format=fmt)
    loaded = datasets.load_dataset(
        "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == len(written) > 0
    assert loaded[0] == written[0]


def test_messages_layout_loads_with_datasets(synth_run: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "m.jsonl"
    export(synth_run, out, format="sft", layout="messages")
    loaded = datasets.load_dataset(
        "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.column_names == ["messages"]


def test_export_command(synth_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    result = runner.invoke(
        app, ["export", str(synth_run), "--format", "dpo", "--out", str(out)], terminal_width=100
    )
    assert result.exit_code == 0, result.output
    assert "3/6 exported" in result.output and "1 no dpo rows" in result.output
    assert len(rows(out)) == 3 and card_path(out).is_file()
    result = runner.invoke(
        app, ["export", str(synth_run), "-f", "sft", "-o", str(out), "--all-outcomes", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.output)["rows"] == 4  # same problems


def test_export_command_user_errors_are_journey_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "x.jsonl")])
    assert isinstance(result.exception, DatasetError)
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "kto"])
    assert isinstance(result.exception, ConfigError)


# -- which long thought ----------------------------------------------------------------------


def smooth_by_hand(session: Path, text: str, *, accepted: bool) -> None:
    """What `journey smooth` leaves in a session folder."""
    record = {"model": "m", "accepted": accepted, "draft_chars": 1, "rewrite_chars": 1}
    (session / "smoothing.json").write_text(json.dumps(record))
    if accepted:
        (session / "transcript.smoothed.md").write_text(text + "\n")


def test_sft_exports_the_accepted_smoothed_long_thought(run_copy: Path, tmp_path: Path) -> None:
    ids = session_ids_by_kind(run_copy)
    smooth_by_hand(run_copy / "sessions" / ids["reflect"], "Smoothly, oops, then 4.", accepted=True)
    smooth_by_hand(run_copy / "sessions" / ids["backtrack"], "Rejected rewrite.", accepted=False)
    got = {kind_of(r["prompt"][0]["content"]): r for r in export(run_copy, tmp_path / "s.jsonl")}
    assert got["reflect"]["completion"][0]["content"] == "Smoothly, oops, then 4."
    draft = (run_copy / "sessions" / ids["backtrack"] / "transcript.md").read_text().strip()
    assert got["backtrack"]["completion"][0]["content"] == draft  # rejected: the draft
    card = load_card(card_path(tmp_path / "s.jsonl"))
    assert card.transcripts == {"draft": 3, "smoothed": 1}
    assert card.filters["transcript"] == "smoothed"
    drafts = export(run_copy, tmp_path / "d.jsonl", transcript="draft")
    assert "Smoothly" not in json.dumps(drafts)
    assert load_card(card_path(tmp_path / "d.jsonl")).transcripts == {"draft": 4}


def test_an_export_with_no_row_says_why_and_writes_nothing(synth_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.jsonl"
    with pytest.raises(EmptyExportError, match=r"no sft rows.*6 sessions seen.*too few backtracks"):
        export_runs([synth_run], out, ExportOptions(format="sft", min_backtracks=5))
    assert not out.exists() and not card_path(out).exists()
    result = runner.invoke(app, ["export", str(synth_run), "--min-backtracks", "5", "-o", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, EmptyExportError)
    card = export_runs(
        [synth_run], out, ExportOptions(format="sft", min_backtracks=5, allow_empty=True)
    )
    assert card.rows == 0 and out.read_text() == "" and card_path(out).is_file()


def test_max_violations_filters_sessions(run_copy: Path, tmp_path: Path) -> None:
    index = run_copy / "sessions.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    ids = session_ids_by_kind(run_copy)
    for summary in lines:  # the session's own count rides in its session_ended event
        if summary["session_id"] == ids["plain"]:
            log = run_copy / "sessions" / summary["session_id"] / "events.jsonl"
            events = log.read_text().splitlines()
            ended = json.loads(events[-1])
            ended["violations"] = 3
            log.write_text("\n".join([*events[:-1], json.dumps(ended)]) + "\n")
    got = export(run_copy, tmp_path / "v.jsonl", max_violations=2)
    assert "plain" not in {kind_of(r["prompt"][0]["content"]) for r in got}
    assert load_card(card_path(tmp_path / "v.jsonl")).skipped["too many violations"] == 1
