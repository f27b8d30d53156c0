"""`journey iterate`: rounds of synthesis, export, training and evaluation, each round
starting from a model the round before trained.

    from journey.training.iterate import run_iteration
    from journey.training.iterate_recipe import load_recipe

    report = run_iteration(load_recipe(Path("examples/iterate-tiny.yaml")), Path("it/tiny"))

A round (`iterate_round`) synthesises with its policy and critic, exports the shortcut
and journey sets from the same sessions, trains one model per arm (the phases of
`journey train sft`; DPO on `journey pairs` of the arm's own samples when asked),
evaluates every model and the round's starting policy on the held-out problems, and
hands the `next_policy` arm's model (and the `next_critic` one's, if any) to the next
round. Everything lands in `OUT/round-K/`; `OUT/iterate.json` records the recipe (a
rerun with another recipe is refused, naming the differences, unless forced) and
`OUT/report.json` compares the rounds (`iterate_report`) and, within a round, the arms
over their seeds (`iterate_arms_report`).

Rerunning resumes: a step whose marker says it is done with the same inputs is
skipped (`iterate_steps`), so an interrupted iteration goes on where it stopped.
Training goes through a `Trainer` (`iterate_train`): TRL by default, any callable
that writes a model dir and returns its spec otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from journey.errors import ConfigError
from journey.runs.files import write_atomic
from journey.runs.manifest import Manifest
from journey.training.iterate_recipe import IterateRecipe
from journey.training.iterate_records import IterateHooks, RoundRecord
from journey.training.iterate_report import IterateReport, build_report
from journey.training.iterate_round import RoundRunner
from journey.training.iterate_settings import NONE
from journey.training.iterate_steps import ModelRef
from journey.training.iterate_train import Trainer, train_with_trl
from journey.training.local_models import check_trainable

__all__ = ["ITERATE_KIND", "MANIFEST_FILE", "REPORT_FILE", "IterateHooks", "run_iteration"]

logger = logging.getLogger(__name__)

ITERATE_KIND = "iterate"
MANIFEST_FILE = "iterate.json"
REPORT_FILE = "report.json"
_FREE = frozenset({"rounds"})
"""Recipe settings a rerun may change: more rounds continue the iteration."""


def run_iteration(
    recipe: IterateRecipe,
    out: Path,
    *,
    rounds: int | None = None,
    force: bool = False,
    trainer: Trainer | None = None,
    hooks: IterateHooks | None = None,
) -> IterateReport:
    """Run (or resume) the recipe's rounds into `out`; write and return the report.

    Args:
        recipe: What each round does.
        out: The iteration's folder; an existing one is resumed.
        rounds: How many rounds (default: the recipe's).
        force: Go on with a recipe that differs from the one `out` was made with, and
            let the steps' own jobs resume with other settings; changed steps are redone.
        trainer: Trains each model (default: TRL, as `journey train`).
        hooks: Where steps and progress are reported (default: nowhere).

    Raises:
        ConfigError: `out` was made with another recipe (without `force`), a setting
            is refused, or the starting model cannot be trained.
        DatasetError: a dataset cannot be read, or a round's set has no row to train on.
        EndpointDownError: a model kept failing; rerunning resumes.
    """
    hooks = hooks or IterateHooks(log=logger.info)
    count = recipe.rounds if rounds is None else rounds
    if count < 1:
        raise ConfigError(f"rounds must be at least 1, got {count!r}")
    if trainer is None:
        check_trainable(recipe.training.model or recipe.policy)  # before hours of synthesis
        trainer = train_with_trl
    out.mkdir(parents=True, exist_ok=True)
    Manifest(ITERATE_KIND, recipe.record(), free=_FREE, read_as_today=_recorded_today).open(
        out / MANIFEST_FILE,
        subject=f"{out} was",
        force=force,
        remedy="use that recipe, another --out, or --force (changed steps are redone)",
    )
    runner = RoundRunner(recipe, out, trainer=trainer, hooks=hooks, force=force)
    policy, critic = ModelRef(recipe.policy), ModelRef(recipe.critic)
    start = ModelRef(recipe.training.model or recipe.policy)
    records: list[RoundRecord] = []
    for number in range(1, count + 1):
        record = runner.run(number, policy, critic, start)
        records.append(record)
        if recipe.next_policy != NONE:
            policy = start = record.final(recipe.next_policy).ref
        if recipe.next_critic != NONE:
            critic = record.final(recipe.next_critic).ref
    report = build_report(records, out)
    write_atomic(out / REPORT_FILE, report.model_dump_json(indent=2) + "\n")
    return report


def _recorded_today(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded recipe as this version reads it: keys added since take their defaults."""
    try:
        return IterateRecipe.model_validate(recorded).record()
    except ValidationError:
        return recorded  # one this version refuses is compared as it was written
