"""What a model's tokens cost: prices per million tokens, and the cost of a usage.

A role's price is found, for prompt and completion tokens apart, in the first of:

1. its spec's options `price_in` / `price_out` (USD per million tokens), e.g.
   `openai:my-model@http://host/v1?price_in=0.2&price_out=0.6`;
2. the user's prices (`--prices FILE`, YAML or JSON: model name → `{in: X, out: Y}`);
3. journey's own dated table of common API models (`prices.yaml` beside this module:
   list prices as OpenAI published them on its `date`, standard tier).

A model is looked up by the name its spec gives it: the model of `openai:MODEL`, the
Hub id or directory of `vllm:` and `hf:`, `embedded`, the file of `replay:`. A role
with several endpoints has a price when every endpoint has the same one.

A price nobody gave is unknown, never 0: a cost made of an unknown price is None (shown
as "—"), and `RolePrice.missing` says which role lacks it. A reply the response cache
gave costs nothing: what is metered (`journey.runs.spend`) is what reached a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from journey.agents.backends.role_endpoints import role_specs
from journey.agents.backends.spec import ModelSpec
from journey.errors import ConfigError
from journey.protocols import TokenUsage

__all__ = [
    "ModelPrice",
    "PriceTable",
    "RolePrice",
    "builtin_prices",
    "load_prices",
    "model_name",
    "parse_prices",
    "prices_record",
    "total_cost",
]

_BUILTIN_FILE = "prices.yaml"
_KEYS = {"in": "price_in", "out": "price_out"}
PER_TOKENS = 1_000_000
"""Prices are per million tokens."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million prompt (`in`) and completion (`out`) tokens, and where they came from."""

    input: float
    output: float
    source: str = field(default="", compare=False)
    """Where each price was found: "spec", "prices file", "journey's table (2025-06-01)"."""

    def cost(self, usage: TokenUsage) -> float:
        """The cost in USD of `usage` at this price."""
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / (
            PER_TOKENS
        )

    def record(self) -> dict[str, float]:
        """As a prices file writes it."""
        return {"in": self.input, "out": self.output}


@dataclass(frozen=True)
class RolePrice:
    """One role's price, or why it has none."""

    role: str
    spec: str
    """The role's model spec(s), as the run records them."""
    price: ModelPrice | None
    missing: str | None = None
    """Why there is no price, in one line naming the role and its model."""

    def cost(self, usage: TokenUsage) -> float | None:
        """The cost of `usage` in USD; None without a price."""
        return None if self.price is None else self.price.cost(usage)


def total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of `costs`, or None when any is unknown: an unknown price is never a 0."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return round(total, 12)  # no float dust (0.004416000000000001) in reports


def _price_value(raw: Any, model: str, key: str, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ConfigError(
            f"{where}: {model!r} {key!r} must be a number of USD per million tokens "
            f"(0 or more), got {raw!r}"
        )
    return float(raw)


def parse_prices(data: Any, where: str, source: str) -> dict[str, ModelPrice]:
    """A mapping of model name → `{in, out}` (or `{models: ...}` around it), checked.

    Args:
        data: What a prices file holds, read.
        where: Names it in errors ("prices file 'p.yaml'").
        source: Where each price comes from, as reports name it.

    Raises:
        ConfigError: `data` is not such a mapping, or a price is not a number >= 0.
    """
    if isinstance(data, Mapping) and isinstance(data.get("models"), Mapping):
        data = data["models"]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must map model names to {{in: X, out: Y}}, got {data!r}")
    table = {}
    for model, entry in data.items():
        if not isinstance(entry, Mapping) or set(entry) != set(_KEYS):
            raise ConfigError(
                f"{where}: {str(model)!r} must have exactly 'in' and 'out' (USD per million "
                f"tokens), got {entry!r}"
            )
        table[str(model)] = ModelPrice(
            _price_value(entry["in"], str(model), "in", where),
            _price_value(entry["out"], str(model), "out", where),
            source,
        )
    return table


def load_prices(path: Path | str) -> dict[str, ModelPrice]:
    """A prices file: YAML or JSON mapping each model name to `{in: X, out: Y}`, in USD
    per million prompt and completion tokens.

    Raises:
        ConfigError: the file cannot be read, is not YAML/JSON, or an entry is malformed.
    """
    path = Path(path)
    where = f"prices file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {where}: {error.strerror or error}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(
            f"{where} is not {'JSON' if path.suffix == '.json' else 'YAML'}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    return parse_prices(data, where, "prices file")


@cache
def builtin_prices() -> tuple[str, dict[str, ModelPrice]]:
    """Journey's table: its date, and the price of each model in it."""
    text = resources.files(__package__).joinpath(_BUILTIN_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    date = str(data["date"])
    return date, parse_prices(data, "journey's prices table", f"journey's table ({date})")


def prices_record(prices: Mapping[str, ModelPrice]) -> dict[str, dict[str, float]]:
    """User prices as a manifest records them (the prices file's form)."""
    return {model: price.record() for model, price in sorted(prices.items())}


def model_name(spec: ModelSpec) -> str:
    """The name a prices table knows the spec's model by."""
    return spec.target or spec.backend


class PriceTable:
    """Finds the price of a role's model (see the module docstring for the order).

    Args:
        user: The user's prices by model name (a `--prices` file).
        builtin: Fall back on journey's dated table.
    """

    def __init__(self, user: Mapping[str, ModelPrice] | None = None, *, builtin: bool = True):
        self.user = dict(user or {})
        self._tables = [self.user, builtin_prices()[1] if builtin else {}]

    def for_spec(self, spec: ModelSpec) -> ModelPrice | None:
        """The spec's price, each half from the first place that has it; None when a half
        is nowhere."""
        found: dict[str, tuple[float, str]] = {}
        for key, option in _KEYS.items():
            if option in spec.options:
                found[key] = (float(spec.options[option]), "spec")
                continue
            for table in self._tables:
                price = table.get(model_name(spec))
                if price is not None:
                    found[key] = (price.input if key == "in" else price.output, price.source)
                    break
        if set(found) != set(_KEYS):
            return None
        sources = dict.fromkeys(source for _, source in found.values())
        return ModelPrice(found["in"][0], found["out"][0], " + ".join(sources))

    def for_role(self, role: str, spec_text: str) -> RolePrice:
        """The price of a role given its `--policy`/`--critic` text (one or more specs)."""
        specs = role_specs(spec_text)
        prices = [self.for_spec(spec) for spec in specs]
        names = ", ".join(dict.fromkeys(model_name(spec) for spec in specs))
        if any(price is None for price in prices):
            return RolePrice(
                role,
                spec_text,
                None,
                f"no price for the {role} ({names}): give its spec price_in and price_out, "
                f"or --prices FILE",
            )
        if len(set(prices)) > 1:
            return RolePrice(role, spec_text, None, f"the {role}'s endpoints have different prices")
        return RolePrice(role, spec_text, prices[0])

    def for_roles(self, models: Mapping[str, str]) -> dict[str, RolePrice]:
        """The price of each role of a run (`models`: spec text per role)."""
        return {role: self.for_role(role, text) for role, text in models.items()}
