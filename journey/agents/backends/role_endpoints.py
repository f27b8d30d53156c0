"""A role's model given as several endpoints: `A,B`, or `@FILE` with one spec a line.

    --policy "openai:qwen@http://gpu1:8000/v1,openai:qwen@http://gpu2:8000/v1"
    --policy @endpoints.txt        (blank lines and lines starting with # are skipped)

A comma inside an option value stays there: `vllm:M?data_parallel=2&gpus=0,1` is one spec.

Each spec may take `concurrency=N`: the requests in flight to that endpoint at once.
One spec gives the role its client as before; several give a `RoutedClient` over them
(`journey.agents.backends.routed`). The agent reads its options (`max_tokens`) from
the first spec, and every spec should serve the same model: the role's records name
them all.
"""

from __future__ import annotations

from pathlib import Path

from autogen_core.models import ChatCompletionClient

from journey.agents.backends import registry
from journey.agents.backends.routed import Endpoint, RoutedClient
from journey.agents.backends.spec import ClientPool, ModelSpec, parse_model_spec
from journey.errors import ModelSpecError

__all__ = ["ENDPOINT_LIMIT_OPTION", "role_client", "role_spec_text", "role_specs"]

ENDPOINT_LIMIT_OPTION = "concurrency"


def _texts(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ModelSpecError(f"cannot read the endpoint list {str(path)!r}: {error}") from None
        found = [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]
        if not found:
            raise ModelSpecError(f"the endpoint list {str(path)!r} names no model spec")
        return found
    return _split_specs(text) or [text]


def _split_specs(text: str) -> list[str]:
    """`A,B` as its specs. A comma inside an option value (`gpus=0,1`) is no new spec: a
    part after a spec with options that has no scheme, path or options of its own and
    names no backend continues that spec's last value."""
    names = {backend.name for backend in registry.backends()}
    specs: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        continues = (
            specs
            and "?" in specs[-1]
            and part
            and not any(mark in part for mark in ":/?@=")
            and part not in names
        )
        if continues:
            specs[-1] = f"{specs[-1]},{part}"
        elif part:
            specs.append(part)
    return specs


def role_specs(text: str) -> list[ModelSpec]:
    """The specs a role's `--policy`/`--critic` value names, in order.

    Raises:
        ModelSpecError: a spec is malformed, a list file is unreadable or empty, or an
            endpoint is named twice.
    """
    specs = [parse_model_spec(part) for part in _texts(text)]
    names = [str(spec) for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ModelSpecError(f"endpoint named twice for one role: {', '.join(twice)}")
    return specs


def role_spec_text(text: str) -> str:
    """The role's specs normalised and joined with commas: what logs and manifests record
    (so a reordered option or a list file reads the same as the list typed out)."""
    return ",".join(str(spec) for spec in role_specs(text))


def role_client(text: str, pool: ClientPool) -> ChatCompletionClient:
    """The role's client: the pool's for one spec, a `RoutedClient` for several."""
    specs = role_specs(text)
    if len(specs) == 1:
        return pool.get(specs[0])
    return RoutedClient(
        [
            Endpoint(str(spec), pool.get(spec), limit=spec.options.get(ENDPOINT_LIMIT_OPTION))
            for spec in specs
        ]
    )
