"""`journey iterate` with seeds and matched data: every arm trained once per seed on
equal rows or tokens, the arms compared over seeds, the experiment resumable.

As in test_iterate, every step runs for real with `function:` models except training,
which a `RecordingTrainer` stands in for: each seed's model is a different function, so
the report's averages, pairing and self-correction counts can be checked by hand.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from autogen_core.models import AssistantMessage, LLMMessage
from test_iterate import EVAL_SPEC, RECIPE, Lines, RecordingTrainer, _even_share
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError
from journey.evaluation.self_correction import self_correction
from journey.exports.token_counts import count_tokens_cheaply
from journey.longthought import WrongTurns
from journey.problems import load_problems
from journey.training.iterate import run_iteration
from journey.training.iterate_match import match_arms, trained_text
from journey.training.iterate_recipe import load_recipe
from journey.training.iterate_report import IterateReport

runner = CliRunner()

# -- models: each seed's journey model behaves differently -------------------------------------


def _asked(messages: Sequence[LLMMessage]) -> tuple[str, int]:
    """The last `Calculate EXPRESSION.` asked, and its value."""
    text = "\n".join(str(m.content) for m in messages)
    found = re.findall(r"Calculate (.+?)\.\s*$", text, re.M)
    assert found and re.fullmatch(r"[\d\s()+\-*/]+", found[-1]), messages
    return found[-1], int(eval(found[-1]))  # digits and operators only, checked above


def policy(messages: Sequence[LLMMessage]) -> str:
    """Synthesis: odd values wrong at the first try, so their long thoughts are longer."""
    expression, value = _asked(messages)
    posed = max(at for at, m in enumerate(messages) if "Calculate" in str(m.content))
    tries = sum(isinstance(m, AssistantMessage) for m in messages[posed:])
    answer = value + 1 if value % 2 and not tries else value
    return f"Step 1: {expression} = {answer}, so the answer is \\boxed{{{answer}}}."


def stepwise_policy(messages: Sequence[LLMMessage]) -> str:
    """As `policy`, but the wrong first try states no answer: the critic judges it, not
    the verifier alone, and names the right value."""
    expression, value = _asked(messages)
    step = policy(messages)
    return step if f"= {value}," in step else f"Step 1: {expression} = {value + 1}."


def correcting_model(messages: Sequence[LLMMessage]) -> str:
    """A wrong result first, then a reflection and the right one: a self-correction."""
    expression, value = _asked(messages)
    return (
        f"Step 1: {expression} = {value + 1}. Wait, that is wrong: "
        f"{expression} = {value}. \\boxed{{{value}}}"
    )


def habit_model(messages: Sequence[LLMMessage]) -> str:
    """Right at once, and says "wait" out of habit: marked, but nothing corrected."""
    expression, value = _asked(messages)
    return f"Step 1: {expression} = {value}. Wait, let me check: yes. \\boxed{{{value}}}"


SPECS = {
    "shortcut-seed1": "function:test_iterate:shortcut_model",
    "shortcut-seed2": "function:test_iterate:shortcut_model",
    "journey-seed1": "function:test_iterate_seeds:correcting_model",
    "journey-seed2": "function:test_iterate_seeds:habit_model",
}
SEEDED: dict[str, Any] = {
    **RECIPE,
    "rounds": 1,
    "policy": "function:test_iterate_seeds:policy",
    "critic": "function:journey.agents.rule_critics:arithmetic",
    "training": {
        "model": "embedded",
        "max_steps": 1,
        "max_length": 64,
        "seeds": [1, 2],
        "match": "tokens",
        "arms": {"shortcut": ["shortcut"], "journey": ["journey"]},
    },
}


def _recipe(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**SEEDED, **changes}, sort_keys=False))  # arm order counts
    return path


def _iterate(recipe: Path, out: Path, trainer: RecordingTrainer) -> tuple[IterateReport, Lines]:
    lines = Lines()
    report = run_iteration(load_recipe(recipe), out, trainer=trainer, hooks=lines.hooks())
    return report, lines


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- end to end -------------------------------------------------------------------------------


def test_arms_trained_per_seed_on_equal_tokens_and_compared(tmp_path: Path) -> None:
    out = tmp_path / "it"
    recipe = _recipe(tmp_path)
    trainer = RecordingTrainer(SPECS)
    report, _ = _iterate(recipe, out, trainer)

    # Each arm once per seed, from the same start, with the seed as the training seed.
    assert trainer.names == list(SPECS)
    assert {job.start for job in trainer.jobs} == {"embedded"}
    assert [dict(job.values)["seed"] for job in trainer.jobs] == [1, 2, 1, 2]
    # On matched data: the shortcut arm (fewer tokens) keeps every row, the journey arm
    # rows up to the shortcut arm's token total, within half a row.
    exports = out / "round-1/exports"
    shortcut_tokens = sum(
        count_tokens_cheaply(trained_text(r)) for r in _rows(exports / "shortcut.jsonl")
    )
    journey_rows = _rows(exports / "journey.jsonl")
    longest = max(count_tokens_cheaply(trained_text(r)) for r in journey_rows)
    (only,) = report.rounds
    models = {m.name: m for m in only.models}
    for seed in (1, 2):
        matched = exports / f"matched/seed-{seed}"
        shortcut, journey = models[f"shortcut-seed{seed}"], models[f"journey-seed{seed}"]
        assert shortcut.rows == len(_rows(exports / "shortcut.jsonl"))
        assert shortcut.tokens == shortcut_tokens
        assert journey.tokens is not None and abs(journey.tokens - shortcut_tokens) <= longest / 2
        assert journey.rows is not None and 0 < journey.rows < shortcut.rows
        assert journey.rows == len(_rows(matched / "journey/1-journey.jsonl"))
        assert (journey.arm, journey.seed) == ("journey", seed)
    job = trainer.jobs[2]
    assert job.phases[0].data == exports / "matched/seed-1/journey/1-journey.jsonl"

    # Arms over seeds: shortcut right on even values, journey always right.
    even, total = _even_share(EVAL_SPEC)
    arms = {row.arm: row for row in only.arms}
    assert list(arms) == ["shortcut", "journey"]
    shortcut_arm, journey_arm = arms["shortcut"], arms["journey"]
    assert [s.model for s in journey_arm.seeds] == ["journey-seed1", "journey-seed2"]
    assert shortcut_arm.accuracy == pytest.approx(even / total) and shortcut_arm.seed_sd == 0
    assert journey_arm.accuracy == 1.0 and journey_arm.problems == total
    assert shortcut_arm.ci_low <= shortcut_arm.accuracy <= shortcut_arm.ci_high
    # The gap, paired by problem and seed: a point on every odd problem.
    (gap,) = only.arm_gaps
    assert (gap.arm, gap.reference, gap.problems, gap.seeds) == ("journey", "shortcut", total, 2)
    assert gap.difference == pytest.approx((total - even) / total)
    assert gap.low <= gap.difference <= gap.high
    # Self-correction: seed 1 corrects a wrong result, seed 2 only says "wait".
    assert journey_arm.self_correction_rate == 0.5
    assert journey_arm.marker_rate == 1.0 and journey_arm.checked_share == 1.0
    assert shortcut_arm.self_correction_rate == 0.0 and shortcut_arm.marker_rate == 0.0
    # Per-model gaps pair each seed with the first arm's model of the same seed.
    assert [(g.name, g.reference) for g in only.gaps] == [
        ("journey-seed1", "shortcut-seed1"),
        ("journey-seed2", "shortcut-seed2"),
    ]
    assert {"synth", "train journey-seed2", "eval journey-seed1"} <= set(only.seconds)
    assert only.wall_seconds == pytest.approx(sum(only.seconds.values()))

    # Again: nothing redone, the same report (times included: they are the markers').
    again, lines = _iterate(recipe, out, RecordingTrainer(SPECS))
    assert lines.ran() == [] and again == report
    # One seed's model deleted: only it is trained again; its inputs did not change,
    # so its evaluation stands.
    shutil.rmtree(out / "round-1/models/journey-seed2")
    redo = RecordingTrainer(SPECS)
    _, lines = _iterate(recipe, out, redo)
    assert redo.names == ["journey-seed2"] and lines.ran() == ["round 1 · train journey-seed2"]

    result = runner.invoke(app, ["iterate", str(recipe), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "arms over seeds" in result.stdout and "journey" in result.stdout


def test_rows_matching_pools_an_arms_phases(tmp_path: Path) -> None:
    """Shortcut then journey against shortcut alone: as many rows in all, from both sets."""
    recipe = _recipe(
        tmp_path,
        training={
            "model": "embedded",
            "seeds": [7],
            "match": "rows",
            "arms": {"shortcut": ["shortcut"], "journey": ["shortcut", "journey"]},
        },
    )
    specs = {"shortcut-seed7": SPECS["shortcut-seed1"], "journey-seed7": SPECS["journey-seed1"]}
    trainer = RecordingTrainer(specs)
    report, _ = _iterate(recipe, tmp_path / "it", trainer)
    models = {m.name: m for m in report.rounds[0].models}
    assert models["journey-seed7"].rows == models["shortcut-seed7"].rows == 6
    journey_job = trainer.jobs[1]
    kept = [len(_rows(phase.data)) for phase in journey_job.phases]
    assert sum(kept) == 6 and all(kept)
    marker = json.loads(
        (tmp_path / "it/round-1/models/journey-seed7/iterate-step.json").read_text()
    )
    assert marker["result"]["phase_rows"] == kept


def test_an_arm_trains_on_revisions_of_the_round_s_critiques(tmp_path: Path) -> None:
    """`revision` is a set: each critique of the synthesis, asked as the debate asked it,
    answered by the step that followed it; an arm trains on it as on any set."""
    recipe = _recipe(
        tmp_path,
        policy="function:test_iterate_seeds:stepwise_policy",
        export={"sets": ["shortcut", "revision"]},
        next_policy="none",
        training={
            "model": "embedded",
            "seeds": [7],
            "arms": {"shortcut": ["shortcut"], "revise": ["shortcut", "revision"]},
        },
    )
    specs = {"shortcut-seed7": SPECS["shortcut-seed1"], "revise-seed7": SPECS["shortcut-seed1"]}
    trainer = RecordingTrainer(specs)
    report, _ = _iterate(recipe, tmp_path / "it", trainer)
    exports = tmp_path / "it/round-1/exports"
    revisions = _rows(exports / "revision.jsonl")
    # The policy is wrong at first on odd values only: one revision for each of them.
    odd = [r for r in _rows(exports / "shortcut.jsonl") if _boxed(r) % 2]
    assert len(revisions) == len(odd) > 0
    for row in revisions:
        critique = row["prompt"][-1]["content"]
        right = re.search(r"is false: .+ is (-?\d+)", critique)
        assert right is not None, critique
        assert f"\\boxed{{{right[1]}}}" in row["completion"][0]["content"]
    revise = trainer.jobs[1]
    assert [phase.data for phase in revise.phases] == [
        exports / "shortcut.jsonl",
        exports / "revision.jsonl",
    ]
    sets = {row.name: row.rows for row in report.rounds[0].sets}
    assert sets["revision"] == len(revisions)


def _boxed(row: dict[str, Any]) -> int:
    found = re.findall(r"\\boxed\{(-?\d+)\}", row["completion"][0]["content"])
    return int(found[-1])


def test_without_seeds_the_arms_are_named_as_before(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, training={"model": "embedded", "match": "rows"})
    specs = {"shortcut": SPECS["shortcut-seed1"], "journey": SPECS["journey-seed1"]}
    trainer = RecordingTrainer(specs)
    report, _ = _iterate(recipe, tmp_path / "it", trainer)
    assert trainer.names == ["shortcut", "journey"]
    assert dict(trainer.jobs[0].values)["seed"] == 42  # `seed`, the command's default
    (only,) = report.rounds
    assert [(a.arm, [s.seed for s in a.seeds]) for a in only.arms] == [
        ("shortcut", [None]),
        ("journey", [None]),
    ]
    assert (tmp_path / "it/round-1/exports/matched/journey/2-journey.jsonl").is_file()


# -- the recipe -------------------------------------------------------------------------------


def test_seed_and_match_settings_are_checked(tmp_path: Path) -> None:
    bad = _recipe(
        tmp_path,
        training={
            "seeds": [1, 1],
            "match": "bytes",
            "arms": {"journey": [{"set": "journey", "seed": 3}]},
        },
    )
    with pytest.raises(ConfigError) as raised:
        load_recipe(bad)
    lines = str(raised.value).splitlines()
    assert lines[0] == "2 mistakes in the recipe:"
    assert "training.seeds: seeds must differ, got [1, 1]" in lines[1]
    assert "training.match: Input should be 'none', 'rows' or 'tokens' (got 'bytes')" in lines[2]
    conflict = _recipe(
        tmp_path, training={"seeds": [1], "arms": {"journey": [{"set": "journey", "seed": 3}]}}
    )
    with pytest.raises(ConfigError, match=r"arms \['journey'\] set a phase seed"):
        load_recipe(conflict)
    with pytest.raises(ConfigError, match=r"training.seeds: .*at least 1 item"):
        load_recipe(_recipe(tmp_path, training={"seeds": []}))


# -- matching ---------------------------------------------------------------------------------


def _write(path: Path, completions: Sequence[str]) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": [{"role": "user", "content": "q"}],
                    "completion": [{"role": "assistant", "content": text}],
                }
            )
            + "\n"
            for text in completions
        )
    )
    return path


def test_matching_by_rows_and_tokens_is_deterministic_per_seed(tmp_path: Path) -> None:
    short = _write(tmp_path / "short.jsonl", [f"s{i}" for i in range(4)])  # 1 token each
    long = _write(tmp_path / "long.jsonl", [f"a b c{i}" for i in range(10)])  # 3 tokens each
    arms = {"short": [short], "long": [long]}

    def match(mode: Any, seed: int) -> dict[str, Any]:
        return match_arms(
            arms, mode=mode, seed=seed, count=count_tokens_cheaply, out=tmp_path / mode
        )

    none = match("none", 1)
    assert (none["short"].rows, none["long"].rows, none["long"].tokens) == (4, 10, 30)
    assert none["long"].phases[0].file == long
    rows = match("rows", 1)
    assert rows["short"].rows == rows["long"].rows == 4 and rows["long"].tokens == 12
    chosen = _rows(rows["long"].phases[0].file)
    assert chosen == _rows(match("rows", 1)["long"].phases[0].file)  # the same seed, the same rows
    original = _rows(long)
    assert chosen == [row for row in original if row in chosen]  # kept in file order
    others = [_rows(match("rows", seed)["long"].phases[0].file) for seed in range(2, 8)]
    assert any(other != chosen for other in others)
    tokens = match("tokens", 1)
    assert tokens["short"].tokens == 4 and tokens["short"].rows == 4
    assert tokens["long"].tokens == 3 and tokens["long"].rows == 1  # 6 is further from 4 than 3
    nearer = match_arms(
        {"short": [_write(tmp_path / "five.jsonl", ["a b c d e"])], "long": [long]},
        mode="tokens",
        seed=1,
        count=count_tokens_cheaply,
        out=tmp_path / "nearer",
    )
    assert nearer["long"].tokens == 6  # 6 is nearer 5 than 3 is


def test_the_trained_text_of_each_layout() -> None:
    reply = {"role": "assistant", "content": "Step 1: done"}
    assert trained_text({"prompt": [{"role": "user", "content": "q"}], "completion": [reply]}) == (
        "Step 1: done"
    )
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, reply]
    assert trained_text({"messages": messages}) == "Step 1: done"
    assert trained_text({"prompt": "q", "completion": "plain"}) == "plain"


# -- self-correction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "correct", "expected"),
    [
        ("Step 1: 6 * 7 = 48. Wait, 6 * 7 = 42. \\boxed{42}", True, (True, True, "claims")),
        ("Step 1: 6 * 7 = 48. Wait, 6 * 7 = 42. \\boxed{42}", False, (False, True, "claims")),
        # The reflection must come after the wrong claim.
        ("Hmm, let me see. 6 * 7 = 48, so \\boxed{42}", True, (False, True, "claims")),
        ("6 * 7 = 42. Wait, let me check: yes. \\boxed{42}", True, (False, True, "claims")),
        ("6 * 7 = 48. Let me recheck: 6 * 7 = 42.", True, (True, True, "claims")),
        # Nothing to check: a marker in a correct output is all there is.
        ("The word is cat. Wait, no: dog. \\boxed{dog}", True, (True, True, "markers")),
        ("The word is dog. \\boxed{dog}", True, (False, False, "markers")),
    ],
)
def test_self_correction(output: str, correct: bool, expected: tuple[bool, bool, str]) -> None:
    found = self_correction(output, correct=correct)
    assert (found.corrected, found.marked, found.basis) == expected


# -- held-out problems left out of training ---------------------------------------------------


def test_held_out_problems_are_left_out_of_synthesis(tmp_path: Path) -> None:
    """The same task and seed, more problems: the first eight are the held-out ones."""
    training = {"model": "embedded", "arms": {"shortcut": ["shortcut"]}}
    plan = load_recipe(
        _recipe(
            tmp_path,
            dataset="rg:basic_arithmetic?size=10&seed=100",
            exclude_held_out=True,
            training=training,
            next_policy="none",
        )
    )
    lines = Lines()
    trainer = RecordingTrainer({"shortcut": SPECS["shortcut-seed1"]})
    report = run_iteration(plan, tmp_path / "it", trainer=trainer, hooks=lines.hooks())
    assert "left out 8 of 10 problems: held out" in lines.lines
    assert report.rounds[0].synth.sessions == 2
    held_out = {r.problem for r in load_problems(EVAL_SPEC).records}
    index = (tmp_path / "it/round-1/synth/sessions.jsonl").read_text().splitlines()
    assert len(index) == 2 and not any(json.loads(line)["problem"] in held_out for line in index)

    # A run that holds a held-out problem's session anyway (copied in, merged, grown from an
    # older dataset): the exports leave it out and count it
    elsewhere = _recipe(tmp_path, dataset=EVAL_SPEC, training=training, next_policy="none")
    run_iteration(load_recipe(elsewhere), tmp_path / "other", trainer=trainer)
    other, synth = tmp_path / "other/round-1/synth", tmp_path / "it/round-1/synth"
    stray = json.loads((other / "sessions.jsonl").read_text().splitlines()[0])
    folder = stray["session_id"]
    shutil.copytree(other / "sessions" / folder, synth / "sessions" / folder)
    with (synth / "sessions.jsonl").open("a") as index_file:
        index_file.write(json.dumps(stray) + "\n")
    run_iteration(plan, tmp_path / "it", trainer=trainer)
    card = json.loads((tmp_path / "it/round-1/exports/shortcut.card.json").read_text())
    assert card["skipped"]["held out"] == 1
    assert card["held_out"] == {"source": EVAL_SPEC, "problems": len(held_out)}
    assert stray["session_id"] not in card["session_ids"]

    nothing_left = _recipe(tmp_path, dataset=EVAL_SPEC, exclude_held_out=True)
    with pytest.raises(ConfigError, match=r"every problem of .* is a held-out problem"):
        run_iteration(load_recipe(nothing_left), tmp_path / "none", trainer=trainer)


# -- the experiment of issue 18 ---------------------------------------------------------------


def test_the_experiment_recipe_reads() -> None:
    recipe = load_recipe(Path(__file__).parent.parent / "examples/experiment-arith.yaml")
    assert recipe.critic == "function:journey.agents.rule_critics:arithmetic"
    assert recipe.training.seeds == (1, 2, 3) and recipe.training.match == "rows"
    assert list(recipe.training.arms) == ["shortcut", "journey"] and recipe.exclude_held_out
    assert recipe.export.options("journey").writer.wrong_turns == "followed"


def test_the_two_round_recipe_reads() -> None:
    recipe = load_recipe(Path(__file__).parent.parent / "examples/iterate-arith.yaml")
    assert recipe.rounds == 2 and recipe.next_policy == "shortcut"
    assert recipe.dataset.for_round(2).source != recipe.dataset.for_round(1).source
    assert recipe.training.model == "embedded" and recipe.exclude_held_out
    assert recipe.export.options("journey").writer.wrong_turns is WrongTurns.FOLLOWED


def test_the_equal_tokens_comparison_reuses_the_synthesis(tmp_path: Path) -> None:
    """As docs/experiment.md says: copy the folder, match tokens, --force."""
    rows = _recipe(tmp_path, training={**SEEDED["training"], "match": "rows"})
    _iterate(rows, tmp_path / "rows", RecordingTrainer(SPECS))
    shutil.copytree(tmp_path / "rows", tmp_path / "tokens")
    tokens = _recipe(tmp_path, training={**SEEDED["training"], "match": "tokens"})
    lines = Lines()
    trainer = RecordingTrainer(SPECS)
    run_iteration(
        load_recipe(tokens), tmp_path / "tokens", trainer=trainer, hooks=lines.hooks(), force=True
    )
    assert "round 1 · synth" not in lines.ran()
    # The shortcut arm has the fewest tokens: its rows, models and evaluations stand.
    assert trainer.names == ["journey-seed1", "journey-seed2"]
    assert not [line for line in lines.ran() if "shortcut" in line]
    marker = tmp_path / "tokens/round-1/models/shortcut-seed1/iterate-step.json"
    assert str(tmp_path) not in marker.read_text()  # {out}: the copy's models are its own
    # A retrained model is evaluated afresh: its folder's answers were the old model's.
    evaluated = json.loads((tmp_path / "tokens/round-1/eval/journey-seed1/eval.json").read_text())
    assert "resumed" not in evaluated  # begun afresh, not resumed


def test_a_recipe_naming_the_old_wrong_turn_flags_means_what_it_did(tmp_path: Path) -> None:
    """`reasoned_trials_only` and `followed_corrections_only` were one choice spelt as two
    booleans: recipes and recorded iterations that name them read as that choice."""
    flags = {
        (False, False): WrongTurns.ALL,
        (True, False): WrongTurns.REASONED,
        (False, True): WrongTurns.FOLLOWED,
        (True, True): WrongTurns.FOLLOWED,
    }
    for (reasoned, followed), choice in flags.items():
        export = {"reasoned_trials_only": reasoned, "followed_corrections_only": followed}
        recipe = load_recipe(_recipe(tmp_path, export=export))
        assert recipe.export.options("journey").writer.wrong_turns is choice
    with pytest.raises(ConfigError, match="wrong_turns alone"):
        both = {"wrong_turns": "all", "followed_corrections_only": True}
        load_recipe(_recipe(tmp_path, export=both))
    # An iteration recorded with the booleans is the same recipe as the choice.
    followed = _recipe(tmp_path, export={"wrong_turns": "followed"})
    out = tmp_path / "it"
    _iterate(followed, out, RecordingTrainer(SPECS))
    manifest = out / "iterate.json"
    recorded = json.loads(manifest.read_text())
    del recorded["export"]["wrong_turns"]
    recorded["export"] |= {"reasoned_trials_only": False, "followed_corrections_only": True}
    manifest.write_text(json.dumps(recorded))
    trainer = RecordingTrainer(SPECS)
    _, lines = _iterate(followed, out, trainer)
    assert trainer.names == [] and lines.ran() == []


def test_how_long_thoughts_are_written_is_an_export_input(tmp_path: Path) -> None:
    """`export.walk_trials` reaches `journey export`'s writer, and a changed writer
    exports again; rows that come out the same (a debate has no tree to walk) train
    nothing again."""
    recipe = load_recipe(_recipe(tmp_path, export={"walk_trials": 1}))
    assert recipe.export.options("journey").writer.trials_per_node == 1
    for choice in WrongTurns:
        chosen = load_recipe(_recipe(tmp_path, export={"wrong_turns": choice.value}))
        assert chosen.export.options("journey").writer.wrong_turns is choice
    with pytest.raises(ConfigError, match="wrong_turns"):
        load_recipe(_recipe(tmp_path, export={"wrong_turns": "some"}))
    rows = _recipe(tmp_path, training={**SEEDED["training"], "match": "rows"})
    _iterate(rows, tmp_path / "rows", RecordingTrainer(SPECS))
    marker = json.loads((tmp_path / "rows/round-1/exports/journey.step.json").read_text())
    assert "writer" not in json.dumps(marker)  # the default writer leaves inputs as they were
    # An option added since is left out of the inputs at its default: markers made
    # before it keep their digests.
    reasoned_rows = _recipe(
        tmp_path,
        export={"wrong_turns": "reasoned"},
        training={**SEEDED["training"], "match": "rows"},
    )
    _iterate(reasoned_rows, tmp_path / "reasoned", RecordingTrainer(SPECS))
    step = json.loads((tmp_path / "reasoned/round-1/exports/journey.step.json").read_text())
    assert step["inputs"]["writer"] == {"wrong_turns": "reasoned"}

    shutil.copytree(tmp_path / "rows", tmp_path / "walked")
    walked = _recipe(
        tmp_path,
        export={"walk_trials": 0},
        training={**SEEDED["training"], "match": "rows"},
    )
    lines, trainer = Lines(), RecordingTrainer(SPECS)
    run_iteration(
        load_recipe(walked), tmp_path / "walked", trainer=trainer, hooks=lines.hooks(), force=True
    )
    assert lines.ran() == ["round 1 · export shortcut", "round 1 · export journey"]
    assert trainer.names == []
