"""The model backends a spec string can name: one `Backend` record per backend, by name.

A backend is everything `parse_model_spec`, `create_client`, `journey models` and the
jobs need to know about it, in one frozen record: its name (the spec's scheme), a
one-line summary and its spec syntax for help text, its options (type, help, checks),
how the part after `name:` becomes a target and a base URL, and a factory that builds
the client (importing heavy modules only then). Adding a backend is one
`register_backend(Backend(...))` call; the built-in ones are in `builtin_backends`.

    >>> from journey.agents.backends.registry import backend, backends
    >>> [b.name for b in backends()]
    ['embedded', 'hf', 'openai', 'vllm', 'llama', 'replay', 'function']
    >>> backend("replay").option_names
    frozenset({'cycle'})
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journey.errors import ModelSpecError

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from journey.agents.backends.spec import ModelSpec

__all__ = [
    "Backend",
    "Option",
    "Target",
    "backend",
    "backends",
    "option",
    "register_backend",
    "unregister_backend",
]

Target = tuple[str, str | None]
"""What a backend's `parse` makes of the part after `name:`: the target and a base URL."""

_BUILTINS = "journey.agents.backends.builtin_backends"
_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One `key=value` option of a model spec.

    Args:
        name: The key.
        type: bool, int, float or str: what the value is converted to.
        help: One line for `journey models`.
        default: The default as help text shows it; the client's constructor holds the
            real one (an option the spec leaves out is not passed at all).
        minimum: Values below it are refused.
        choices: The only values allowed (str options).
        agent: Read by what uses the client, not by the client: the agent (`max_tokens`)
            or the router of a role's endpoints (`concurrency`):
            the client is built without it, so specs differing only in it share one.
        affects_replies: False for an option that changes how a reply is fetched, not
            what it says (timeouts, retries, threads, memory): the response cache
            leaves it out of the model's identity, so changing it reuses the cache.
    """

    name: str
    type: type
    help: str
    default: str = ""
    minimum: int | float | None = None
    choices: tuple[str, ...] = ()
    agent: bool = False
    affects_replies: bool = True

    def convert(self, raw: str, spec: str) -> Any:
        """The value of `raw` as this option's type.

        Raises:
            ModelSpecError: `raw` is not a value of the type.
        """
        if self.type is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ModelSpecError(
                f"option {self.name}={raw!r} in model spec {spec!r} must be true or false"
            )
        try:
            return self.type(raw)
        except ValueError:
            raise ModelSpecError(
                f"option {self.name}={raw!r} in model spec {spec!r} must be a {self.type.__name__}"
            ) from None

    def check(self, value: Any, spec: str) -> None:
        """Refuse a converted value out of range.

        Raises:
            ModelSpecError: below `minimum`, or not one of `choices`.
        """
        if self.minimum is not None and value < self.minimum:
            raise ModelSpecError(
                f"option {self.name}={value!r} in model spec {spec!r} "
                f"must be at least {self.minimum}"
            )
        if self.choices and value not in self.choices:
            raise ModelSpecError(
                f"option {self.name}={value!r} in model spec {spec!r} must be one of "
                f"{', '.join(self.choices)}"
            )


@dataclass(frozen=True)
class Backend:
    """One model backend, as a spec names it.

    Args:
        name: The spec's scheme (`name:...`) and `ModelSpec.backend`.
        summary: One line for help text.
        syntax: The spec's form, e.g. "openai:MODEL[@URL]".
        options: The options it takes; any other option is refused.
        parse: `parse(rest, spec)` for a spec `name:rest` (or just `name`, rest ""):
            the target and base URL, or None when `rest` is not this backend's (the spec
            is then unknown, unless a backend's `claims` takes it). Raises
            `ModelSpecError` for a spec that is this backend's but malformed.
        create: Builds the client from a spec (without the agent options).
        claims: For a spec whose scheme names no backend: True when this backend takes
            the whole text as its target (hf: an existing directory).
        claims_hint: What `claims` takes, for help text ("a directory").
        local_weights: The directory of the model's weights, for backends that have
            local weights (training needs them).
        fingerprint: What tells apart the models one spec may name over time (weights
            retrained in place, a new version of the package shipping them), added to
            the response cache's identity (`reply_identity`); None, or a None result,
            when the spec's target says it all.
        seeded_by_default: Every request may carry a seed even when the spec gives none
            (the local clients, which sample from seed 0; the vLLM and llama.cpp servers
            journey starts):
            a job then seeds each request (`seeded_client`); for other backends only
            when the spec gives a `seed`.
    """

    name: str
    summary: str
    syntax: str
    options: tuple[Option, ...]
    parse: Callable[[str, str], Target | None]
    create: Callable[[ModelSpec], ChatCompletionClient]
    claims: Callable[[str], bool] | None = None
    claims_hint: str = ""
    local_weights: Callable[[ModelSpec], Path] | None = None
    fingerprint: Callable[[ModelSpec], str | None] | None = None
    seeded_by_default: bool = False

    @property
    def option_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options)

    @property
    def agent_options(self) -> frozenset[str]:
        """Options the agents read; the client is built without them."""
        return frozenset(o.name for o in self.options if o.agent)

    def option(self, name: str) -> Option | None:
        """The option of that name, or None when this backend does not take it."""
        return next((o for o in self.options if o.name == name), None)

    def takes(self, name: str) -> bool:
        """True when this backend takes the option `name`."""
        return self.option(name) is not None

    @property
    def usage(self) -> str:
        """The syntax as error messages show it, e.g. "'hf:DIR' (or a directory)"."""
        hint = f" (or {self.claims_hint})" if self.claims_hint else ""
        return f"'{self.syntax}'{hint}"


_REGISTRY: dict[str, Backend] = {}
_loaded: list[bool] = []  # non-empty once the built-in backends are (being) registered


def _table() -> dict[str, Backend]:
    if not _loaded:
        _loaded.append(True)  # before the import: it registers through here
        importlib.import_module(_BUILTINS)
    return _REGISTRY


def register_backend(new: Backend, *, replace: bool = False) -> Backend:
    """Add a backend (after the built-in ones); returns it.

    Raises:
        ValueError: the name is taken (unless `replace`) or not a lower-case word, an
            option repeats, or an option has another type than the same-named option
            of a registered backend (one key has one type across backends).
    """
    table = _table()
    if not _NAME.fullmatch(new.name):
        raise ValueError(f"backend name {new.name!r} must be a lower-case word")
    if new.name in table and not replace:
        raise ValueError(f"a backend named {new.name!r} is already registered")
    if len(new.option_names) != len(new.options):
        raise ValueError(f"backend {new.name!r} declares an option twice")
    for declared in new.options:
        other = option(declared.name)
        if other is not None and (other.type, other.agent) != (declared.type, declared.agent):
            raise ValueError(
                f"option {declared.name!r} of backend {new.name!r} is a "
                f"{declared.type.__name__}, but elsewhere a {other.type.__name__}"
            )
    table[new.name] = new
    return new


def unregister_backend(name: str) -> None:
    """Remove a registered backend (tests; a plugin replacing one)."""
    _table().pop(name, None)


def backend(name: str) -> Backend:
    """The backend registered under `name`.

    Raises:
        ModelSpecError: no backend has that name.
    """
    try:
        return _table()[name]
    except KeyError:
        known = ", ".join(_table())
        raise ModelSpecError(f"no model backend named {name!r} (known: {known})") from None


def backends() -> tuple[Backend, ...]:
    """Every registered backend, in the order they were registered."""
    return tuple(_table().values())


def option(name: str) -> Option | None:
    """The option `name` as some backend declares it (its type is the same in all), or
    None when no backend takes it."""
    for registered in _table().values():
        found = registered.option(name)
        if found is not None:
            return found
    return None
