"""Procedural problems: reasoning-gym tasks, generated on demand, each with its verifier.

    --dataset "rg:basic_arithmetic?size=200&seed=1"
    --dataset "rg:chain_sum?size=500&seed=3&min_terms=2&max_terms=4"

`rg:TASK` names a reasoning-gym task (`size` problems, default 100; `seed`, default 0;
any other `key=value` is the task's own configuration). reasoning-gym draws each problem
at random, so a small pool repeats itself (100 draws of three one-digit factors hold 92
different products): journey keeps drawing until it has `size` *different* questions,
and refuses a pool too small for that. `distinct=false` takes the draws as they come.
The same spec gives the same problems on any machine, so a run records the spec, not
the problems. Each problem
carries its verifier (`meta["verifier"]`, the spec and the problem's index): the
task's own `score_answer`, which knows what a right answer to *that* task is (a
sequence, a word, a number), where math-verify knows only mathematics.

reasoning-gym is an optional dependency (the `gym` extra), imported only here and only
for such a source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from journey.errors import ConfigError, DatasetError

__all__ = [
    "PROCEDURAL_PREFIX",
    "VERIFIER_KEY",
    "ProceduralProblem",
    "ProceduralSource",
    "dataset_scorer",
    "load_procedural",
    "parse_procedural_source",
    "procedural_score",
]

PROCEDURAL_PREFIX = "rg:"
VERIFIER_KEY = "verifier"
"""The problem's `meta` key that names its verifier (`rg:TASK?...#INDEX`)."""
_INSTALL = "pip install 'journey-learning[gym]' (or pip install reasoning-gym)"
_DEFAULT_SIZE = 100
_DISTINCT_KEY = "distinct"
_MAX_DRAWS_PER_PROBLEM = 64
"""How far past `size` the draws go looking for different questions before refusing."""


def _value(raw: str) -> Any:
    """A config value: JSON where it parses (numbers, true/false, lists), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass(frozen=True)
class ProceduralSource:
    """A parsed `rg:` dataset spec."""

    task: str
    size: int = _DEFAULT_SIZE
    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    distinct: bool = True
    """Draw until `size` different questions (journey's option, not the task's)."""

    def __str__(self) -> str:
        options = {"size": self.size, "seed": self.seed, **self.config}
        if not self.distinct:
            options[_DISTINCT_KEY] = False
        query = "&".join(f"{k}={_text(v)}" for k, v in sorted(options.items()))
        return f"{PROCEDURAL_PREFIX}{self.task}?{query}"

    def record(self) -> dict[str, Any]:
        """Where the problems came from, as `run.json`'s dataset section keeps it."""
        return {
            "format": "reasoning-gym",
            "spec": str(self),  # what --dataset takes to generate the same problems again
            "task": self.task,
            "size": self.size,
            "seed": self.seed,
            "config": dict(self.config),
            "distinct": self.distinct,
            # how many of reasoning-gym's draws it took to find `size` different questions
            **({"draws": _distinct_draws(str(self))[0][-1] + 1} if self.distinct else {}),
            "reasoning_gym_version": _version(),
        }

    def draws(self, size: int) -> ProceduralSource:
        """The source of reasoning-gym's own first `size` draws, repeats and all."""
        return ProceduralSource(self.task, size, self.seed, self.config, distinct=False)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_procedural_source(text: str) -> ProceduralSource | None:
    """The `rg:` spec `text`, or None when `text` is not one.

    Raises:
        ConfigError: an empty task, a malformed option, or a size or seed that is not a
            whole number (size at least 1).
    """
    if not text.startswith(PROCEDURAL_PREFIX):
        return None
    task, _, query = text[len(PROCEDURAL_PREFIX) :].partition("?")
    if not task.strip():
        raise ConfigError(f"dataset spec {text!r} names no reasoning-gym task (rg:TASK?...)")
    options: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        key, eq, raw = pair.partition("=")
        if not (key and eq):
            raise ConfigError(f"bad option {pair!r} in dataset spec {text!r} (use key=value)")
        options[key] = _value(raw)
    size, seed = options.pop("size", _DEFAULT_SIZE), options.pop("seed", 0)
    distinct = options.pop(_DISTINCT_KEY, True)
    for name, number in (("size", size), ("seed", seed)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigError(f"{name} must be a whole number in {text!r}, got {number!r}")
    if size < 1:
        raise ConfigError(f"size must be at least 1 in {text!r}, got {size}")
    if not isinstance(distinct, bool):
        raise ConfigError(f"distinct must be true or false in {text!r}, got {distinct!r}")
    return ProceduralSource(task.strip(), size, seed, options, distinct)


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise DatasetError(f"rg: datasets need reasoning-gym: {_INSTALL}") from None
    return reasoning_gym


def _version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("reasoning-gym")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=32)
def _dataset(spec: str) -> Any:
    """The reasoning-gym dataset a spec names (built once per process)."""
    source = parse_procedural_source(spec)
    assert source is not None
    gym = _reasoning_gym()
    known = sorted(gym.factory.DATASETS)
    if source.task not in known:
        near = [name for name in known if source.task in name or name in source.task][:5]
        hint = f"; did you mean {', '.join(near)}?" if near else " (see reasoning_gym.factory)"
        raise ConfigError(f"reasoning-gym has no task {source.task!r}{hint}")
    try:
        return gym.create_dataset(source.task, size=source.size, seed=source.seed, **source.config)
    except (TypeError, ValueError, AssertionError) as error:
        raise ConfigError(f"reasoning-gym refused {spec!r}: {error}") from None


@dataclass(frozen=True)
class ProceduralProblem:
    """One generated problem: its question, answer and verifier spec."""

    index: int
    question: str
    answer: str
    verifier: str
    metadata: dict[str, Any]


@lru_cache(maxsize=32)
def _distinct_draws(spec: str) -> tuple[tuple[int, ...], int]:
    """The indices of the first `size` different questions among a distinct source's
    draws, and how many draws that took (the size of the dataset they come from).

    The draws double until they hold enough, so the indices, and the verifier specs
    that name them, depend on the spec alone.

    Raises:
        ConfigError: the task's pool holds fewer than `size` different questions within
            `_MAX_DRAWS_PER_PROBLEM` times `size` draws.
    """
    source = parse_procedural_source(spec)
    assert source is not None and source.distinct
    draws = source.size
    while True:
        dataset, seen, kept = _dataset(str(source.draws(draws))), set(), []
        for index in range(draws):
            question = str(dataset[index]["question"])
            if question not in seen:
                seen.add(question)
                kept.append(index)
                if len(kept) == source.size:
                    return tuple(kept), draws
        if draws >= source.size * _MAX_DRAWS_PER_PROBLEM:
            raise ConfigError(
                f"{spec!r} holds only {len(kept)} different questions in {draws} draws, "
                f"fewer than size={source.size}: lower size, widen the task's settings, "
                "or add distinct=false to take repeats"
            )
        draws *= 2


def load_procedural(source: ProceduralSource) -> list[ProceduralProblem]:
    """Generate the problems `source` names, in order: `size` different questions, or
    reasoning-gym's first `size` draws when `source.distinct` is off.

    Each problem's verifier names the draws it came from and its index among them.

    Raises:
        ConfigError: an unknown task, a configuration the task refuses, or (distinct) a
            pool with fewer than `size` different questions.
        DatasetError: reasoning-gym is not installed.
    """
    if source.distinct:
        indices, draws = _distinct_draws(str(source))
    else:
        indices, draws = tuple(range(source.size)), source.size
    spec = str(source.draws(draws))
    dataset = _dataset(spec)
    problems = []
    for index in indices:
        entry = dataset[index]
        problems.append(
            ProceduralProblem(
                index=index,
                question=str(entry["question"]),
                answer=str(entry["answer"]),
                verifier=f"{spec}#{index}",
                metadata=json.loads(json.dumps(entry.get("metadata", {}), default=str)),
            )
        )
    return problems


def procedural_score(verifier: str, predicted: str) -> float:
    """The task's own score of `predicted` for the problem `verifier` names (0 to 1).

    Raises:
        ConfigError: `verifier` is not an `rg:...#INDEX` spec.
    """
    spec, sep, index = verifier.rpartition("#")
    if not sep or not index.isdigit() or parse_procedural_source(spec) is None:
        raise ConfigError(f"not a reasoning-gym verifier: {verifier!r}")
    dataset = _dataset(spec)
    entry = dataset[int(index)]
    return float(dataset.score_answer(answer=predicted, entry=entry) or 0.0)


def dataset_scorer(meta: Mapping[str, Any]) -> Callable[[str], float] | None:
    """The dataset's own scorer for a problem whose `meta` names one; None for a problem
    that math-verify checks against its gold answer."""
    verifier = meta.get(VERIFIER_KEY)
    if not isinstance(verifier, str):
        return None
    parse_procedural_source(verifier.rpartition("#")[0] or verifier)  # raises when malformed
    return lambda predicted: procedural_score(verifier, predicted)
