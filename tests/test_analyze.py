"""`journey analyze`: long thoughts of runs, exports, eval records and JSONL columns,
read, counted and compared side by side; the table, --json, --png and the errors."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from test_replay import FixtureRun, build_run
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.evaluation.metrics import EvalRecord
from journey.evaluation.thought_analysis import analyse_sources, analysis_document
from journey.evaluation.thought_sources import SourceKind, read_thought_source, text_at
from journey.exports.export import ExportOptions, export_runs
from journey.exports.token_counts import count_tokens_cheaply
from journey.longthought.thought_metrics import DEFAULT_KEYWORDS
from journey.view.analysis_report import render_thought_analysis

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Short words, so the heuristic token count is the word count.
SFT_LONG = "Step 1: a b c\nWait, b is wrong. Let me go back to step 1.\nStep 1: a b d"  # 21
SFT_SHORT = "Step 1: a b\nso d"  # 6


def write_lines(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, strings as they are (malformed lines)."""
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    """Four sessions: solved, failed at max turns, a journey, a crash (unfinished)."""
    return build_run(tmp_path_factory.mktemp("analyze") / "run")


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    """Both sft layouts, a line that is not JSON, and a row with no assistant turn."""
    return write_lines(
        tmp_path / "sft.jsonl",
        [
            {"prompt": [user("p")], "completion": [assistant(SFT_LONG)]},
            "{not json",
            {"messages": [user("q"), assistant(SFT_SHORT)]},
            {"messages": [user("only a question")]},
        ],
    )


def record(index: int, output: str) -> str:
    return EvalRecord(
        id=f"p{index}",
        index=index,
        line=index + 1,
        problem="2+2?",
        gold="4",
        output=output,
        predicted="4",
        correct=True,
    ).model_dump_json()


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """Three records, one line that is no record, and a last line cut off mid-write."""
    folder = tmp_path / "evals" / "base"
    folder.mkdir(parents=True)
    text = "\n".join(
        [
            record(0, "Hmm, let me verify. 2+2=4, so \\boxed{4}."),
            '{"id": "x"}',
            record(1, "Wait. Let me go back and start over: \\boxed{4}."),
            record(2, "\\boxed{4}"),
            record(3, "cut")[:30],
        ]
    )
    (folder / "records.jsonl").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def column_file(tmp_path: Path) -> Path:
    """Texts at `data.turns.-1.text`; a row without it, one with a number there, a list."""
    rows: list[Any] = [
        {"data": {"turns": [{"text": "q"}, {"text": "wait wait wait so"}]}},
        {"data": {"turns": []}},
        {"data": {"turns": [{"text": 7}]}},
        "[1, 2]",
        {"data": {"turns": [{"text": "hmm, ok"}]}},
    ]
    return write_lines(tmp_path / "o1.jsonl", rows)


# -- reading sources ---------------------------------------------------------------------------


def test_a_run_gives_its_finished_sessions_long_thoughts(fixture_run: FixtureRun) -> None:
    source = read_thought_source(fixture_run.root)
    assert (source.kind, source.name) == (SourceKind.RUN, "run")
    assert source.skipped == {"unfinished session": 1}
    folders = [fixture_run.root / "sessions" / r.session_id for r in fixture_run.finished]
    assert source.texts == [(f / "transcript.md").read_text().rstrip("\n") for f in folders]


def test_the_run_in_numbers(fixture_run: FixtureRun) -> None:
    [analysis] = analyse_sources([fixture_run.root], keywords=("wait", "let me"))
    texts = [
        (fixture_run.root / "sessions" / r.session_id / "transcript.md").read_text()
        for r in fixture_run.finished
    ]
    total = sum(count_tokens_cheaply(t) for t in texts)
    s = analysis.summary
    assert s.thoughts == 3 and sum(s.token_counts) == total
    # solved: 2 steps on 2 lines; max turns: 3 on 3; the journey: 5 steps and 2 reflections
    assert s.steps.median == 3.0 and s.steps.mean == pytest.approx(10 / 3)
    assert (s.lines.mean, s.lines.median) == (4.0, 3.0)
    # "wait": the max-turns session's first step and the journey's first reflection
    assert s.keywords_per_1k == {"wait": 2000 / total, "let me": 2000 / total}
    # Wait, is wrong, Let me go back, Hmm, is wrong, Let me redo; and the other "wait"
    assert s.reflections_per_1k == pytest.approx(7000 / total)
    assert s.backtracks_per_1k == pytest.approx(1000 / total)  # "Let me go back to step 1"
    assert s.with_reflection == pytest.approx(2 / 3) and s.with_backtrack == pytest.approx(1 / 3)


def test_an_export_reads_the_assistant_turn_of_either_layout(export_file: Path) -> None:
    source = read_thought_source(export_file)
    assert (source.kind, source.name) == (SourceKind.EXPORT, "sft.jsonl")
    assert source.texts == [SFT_LONG, SFT_SHORT]
    assert source.skipped == {"no assistant turn": 1}
    assert (source.malformed_lines, source.malformed_examples) == (1, ["line 2: not JSON"])


def test_an_export_of_the_run_holds_its_solved_sessions_thoughts(
    fixture_run: FixtureRun, tmp_path: Path
) -> None:
    out = tmp_path / "run-sft.jsonl"
    export_runs([fixture_run.root], out, ExportOptions(format="sft"))
    exported = read_thought_source(out).texts
    run = read_thought_source(fixture_run.root).texts
    assert exported == [run[0], run[2]]  # the solved one and the journey; not the failure


def test_eval_records_are_read_without_touching_the_file(eval_dir: Path) -> None:
    before = (eval_dir / "records.jsonl").read_bytes()
    for path in (eval_dir, eval_dir / "records.jsonl"):
        source = read_thought_source(path)
        assert (source.kind, source.name) == (SourceKind.EVAL, "base")
        assert [t[:5] for t in source.texts] == ["Hmm, ", "Wait.", "\\boxe"]
        assert source.malformed_lines == 2
        assert source.malformed_examples == ["line 2: not an eval record", "line 5: not JSON"]
    assert (eval_dir / "records.jsonl").read_bytes() == before


def test_a_column_at_a_dotted_path(column_file: Path) -> None:
    source = read_thought_source(column_file, column="data.turns.-1.text")
    assert (source.kind, source.name) == (SourceKind.COLUMN, "o1.jsonl")
    assert source.texts == ["wait wait wait so", "hmm, ok"]
    assert source.skipped == {"data.turns.-1.text not text": 1, "no data.turns.-1.text": 1}
    assert source.malformed_examples == ["line 4: not a JSON object"]


def test_text_at() -> None:
    row = {"a.b": 1, "a": {"b": [10, {"c": "x"}]}}
    assert text_at(row, "a.b") == 1  # the literal key wins
    assert text_at(row, "a.b.1.c") == "x" and text_at(row, "a.b.-2") == 10
    for missing in ("z", "a.c", "a.b.5", "a.b.x"):
        with pytest.raises(KeyError):
            text_at(row, missing)


def test_a_column_is_read_where_the_first_row_has_it(export_file: Path) -> None:
    prompts = read_thought_source(export_file, column="prompt.0.content")
    assert prompts.kind is SourceKind.COLUMN and prompts.texts == ["p"]
    assert prompts.skipped == {"no prompt.0.content": 2}
    assert read_thought_source(export_file, column="text").kind is SourceKind.EXPORT


def test_a_column_of_chat_messages_gives_the_last_assistant_turn(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "chats.jsonl",
        [{"chat": [user("q"), assistant("first"), user("more"), assistant("second")]}],
    )
    assert read_thought_source(path, column="chat").texts == ["second"]


def test_limit_reads_the_first_texts(fixture_run: FixtureRun, export_file: Path) -> None:
    assert read_thought_source(export_file, limit=1).texts == [SFT_LONG]
    assert len(read_thought_source(fixture_run.root, limit=2).texts) == 2


@pytest.mark.parametrize(
    ("make", "column", "message"),
    [
        (lambda p: p / "missing.jsonl", None, "no file or directory at"),
        (lambda p: p, None, "is neither a run directory"),
        (lambda p: write_lines(p / "x.jsonl", [{"text": "t"}]), None, "name the text field"),
        (lambda p: write_lines(p / "x.jsonl", ["oops", ""]), None, "holds no JSON object line"),
        (lambda p: write_lines(p / "x.jsonl", [{"text": "t"}]), "body", "has no column 'body'"),
    ],
)
def test_what_cannot_be_read_is_one_dataset_error(
    tmp_path: Path, make: Any, column: str | None, message: str
) -> None:
    with pytest.raises(DatasetError, match=message) as raised:
        read_thought_source(make(tmp_path), column=column)
    assert "\n" not in str(raised.value)


def test_an_empty_column_file_is_an_empty_source(tmp_path: Path) -> None:
    [analysis] = analyse_sources([write_lines(tmp_path / "e.jsonl", [])], column="text")
    assert analysis.summary.thoughts == 0 and math.isnan(analysis.summary.tokens.mean)
    bad = write_lines(tmp_path / "bad.jsonl", ["nope", "[]"])
    source = read_thought_source(bad, column="text")
    assert source.texts == [] and source.malformed_lines == 2


def test_options_are_checked(export_file: Path) -> None:
    with pytest.raises(ConfigError, match="at least one source"):
        analyse_sources([])
    with pytest.raises(ConfigError, match="--limit must be at least 1, got 0"):
        analyse_sources([export_file], limit=0)
    with pytest.raises(ConfigError, match="non-empty keyword"):
        analyse_sources([export_file], keywords=[" "])


def test_sources_of_one_name_are_named_by_their_paths(tmp_path: Path, export_file: Path) -> None:
    other = tmp_path / "b" / "sft.jsonl"
    other.parent.mkdir()
    other.write_bytes(export_file.read_bytes())
    names = [a.name for a in analyse_sources([export_file, other])]
    assert names == [str(export_file), str(other)]


# -- side by side ------------------------------------------------------------------------------


def render(table: object) -> str:
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def row(text: str, label: str) -> list[str]:
    """The cells of the table row that starts with `label`."""
    line = next(line for line in text.splitlines() if line.startswith(label))
    return line[len(label) :].split()


def test_four_sources_side_by_side(
    fixture_run: FixtureRun, export_file: Path, eval_dir: Path, column_file: Path
) -> None:
    analyses = analyse_sources(
        [fixture_run.root, export_file, eval_dir, column_file],
        keywords=("wait", "hmm"),
        column="data.turns.-1.text",  # only the file that has it is read as a column
    )
    text = render(render_thought_analysis(analyses))
    header = text.splitlines()[0].split()
    assert header == ["run", "sft.jsonl", "base", "o1.jsonl"]
    assert text.splitlines()[1].split() == ["run", "export", "eval", "column"]
    assert row(text, "thoughts") == ["3", "2", "3", "2"]
    # export: 27 tokens, one "wait"; column: "wait" x3 in 6 tokens
    assert row(text, '"wait" / 1k tokens')[1:4:2] == ["37.0", "500.0"]
    assert row(text, "tokens · mean")[1] == "13.5" and row(text, "tokens · p90")[1] == "19.5"
    assert row(text, "steps · mean")[1] == "1.5"  # two steps and one
    assert row(text, "with a backtrack") == ["33.3%", "50.0%", "33.3%", "0.0%"]
    assert row(text, "skipped · unfinished session") == ["1", "0", "0", "0"]
    assert row(text, "malformed lines skipped") == ["0", "1", "2", "1"]
    assert "tokens: heuristic" in text


def test_a_source_with_no_thoughts_shows_dashes(tmp_path: Path) -> None:
    analyses = analyse_sources([write_lines(tmp_path / "e.jsonl", [])], column="text")
    text = render(render_thought_analysis(analyses))
    assert row(text, "thoughts") == ["0"] and row(text, "tokens · mean") == ["—"]
    assert row(text, "with a reflection") == ["—"]


# -- the command -------------------------------------------------------------------------------


def test_the_command_prints_the_table(export_file: Path, eval_dir: Path) -> None:
    result = runner.invoke(app, ["analyze", str(export_file), str(eval_dir), "--keyword", "so"])
    assert result.exit_code == 0, result.output
    assert "sft.jsonl" in result.stdout and "base" in result.stdout
    assert row(result.stdout, '"so" / 1k tokens') == ["37.0", "43.5"]  # 1 in 27; 1 in 23
    assert '"wait"' not in result.stdout  # --keyword replaces the defaults
    assert "1 malformed line skipped (line 2: not JSON)" in result.stderr
    assert "2 malformed lines skipped" in result.stderr


def test_json_is_one_document(export_file: Path, column_file: Path, tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.jsonl", [])
    result = runner.invoke(
        app,
        ["analyze", str(column_file), str(empty), "--column", "data.turns.-1.text", "--json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tokenizer"] == "heuristic" and document["keywords"] == list(DEFAULT_KEYWORDS)
    first, second = document["sources"]
    assert (first["name"], first["kind"], first["thoughts"]) == ("o1.jsonl", "column", 2)
    assert first["tokens"] == {
        "mean": 3.0,
        "p10": 2.2,
        "median": 3.0,
        "p90": 3.8,
        "minimum": 2,
        "maximum": 4,
    }
    assert first["keywords_per_1k"]["wait"] == 500.0 and first["keywords_per_1k"]["hmm"] == 1000 / 6
    assert first["with_reflection"] == 1.0 and first["backtracks_per_1k"] == 0.0
    assert first["malformed_lines"] == 1 and first["malformed_examples"] == [
        "line 4: not a JSON object"
    ]
    # no thoughts: null, never NaN (which is not JSON)
    assert second["thoughts"] == 0 and second["tokens"]["mean"] is None
    assert second["reflections_per_1k"] is None and second["with_backtrack"] is None
    assert "NaN" not in result.stdout


def test_the_document_matches_the_analysis(export_file: Path) -> None:
    analyses = analyse_sources([export_file], keywords=("wait",))
    [source] = analysis_document(analyses, tokenizer="cheap")["sources"]
    assert source["tokens"]["mean"] == analyses[0].summary.tokens.mean == 13.5
    assert source["skipped"] == {"no assistant turn": 1}


def test_png_writes_a_histogram_per_source_and_an_overlay(
    fixture_run: FixtureRun, export_file: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    result = runner.invoke(
        app, ["analyze", str(fixture_run.root), str(export_file), "--png", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["png"]
    assert [Path(p).name for p in written] == ["tokens-run.png", "tokens-sft.png", "tokens-all.png"]
    for path in written:
        data = Path(path).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_png_without_matplotlib_is_one_line(
    export_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = runner.invoke(app, ["analyze", str(export_file), "--png", str(tmp_path / "p")])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "--png needs matplotlib: pip install 'journey-learning[plot]'"


def test_an_unknown_tokenizer_is_a_config_error(export_file: Path) -> None:
    result = runner.invoke(app, ["analyze", str(export_file), "--tokenizer", "bpe"])
    assert isinstance(result.exception, ConfigError)
    assert "unknown tokenizer 'bpe'" in str(result.exception)
    cheap = runner.invoke(app, ["analyze", str(export_file), "--tokenizer", "cheap", "--json"])
    assert json.loads(cheap.stdout)["tokenizer"] == "heuristic"


def test_the_help_lists_the_default_keywords() -> None:
    command = typer.main.get_command(app).commands["analyze"]  # type: ignore[attr-defined]
    [option] = [p for p in command.params if p.name == "keyword"]
    assert f"default: {', '.join(DEFAULT_KEYWORDS)}." in option.help


def test_an_unknown_source_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text('{"title": "x"}\n')
    command = "from journey.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", command, "analyze", str(tmp_path / "notes.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot tell what") and "--column" in line and "title" in line
