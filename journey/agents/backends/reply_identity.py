"""What a model is, as far as its replies go: the identity a response cache keys on.

Two specs with one identity give the same answers to the same requests (up to
sampling), so the cache may answer one with the other's replies. The identity is the
backend, the model, and the spec options that shape replies (`Option.affects_replies`:
temperature, seed, dtype, the API kind...). Left out: the endpoint (several servers of
one model share a cache), secrets, timeouts, retries and memory settings, and the
options agents send with each request (`max_tokens`, which the request key holds).

A model whose weights can change under one name carries a fingerprint, which its
backend declares (`Backend.fingerprint`): a local directory (`hf:`, `vllm:`) the size
and modification time of its weight and config files (`weights_fingerprint`), so a
retrained model does not answer from its predecessor's cache; the embedded model the
version of the package that ships it (`package_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from journey.agents.backends import registry

if TYPE_CHECKING:
    from journey.agents.backends.spec import ModelSpec

__all__ = ["package_fingerprint", "reply_identity", "role_identity", "weights_fingerprint"]

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "config.json", "generation_config.json")


def reply_identity(spec: ModelSpec, *, fingerprint: bool = True) -> str:
    """The response cache's name for the model `spec` gives (see the module docstring);
    without the weights' `fingerprint` when told (the name seeds derive from: a copied
    model then samples as the original)."""
    backend = registry.backend(spec.backend)
    shaping = {o.name for o in backend.options if o.affects_replies and not o.agent}
    options = {k: v for k, v in sorted(spec.options.items()) if k in shaping}
    identity: dict[str, object] = {
        "backend": spec.backend,
        "model": spec.target,
        "options": options,
    }
    printed = backend.fingerprint(spec) if fingerprint and backend.fingerprint else None
    if printed is not None:
        identity["fingerprint"] = printed
    return json.dumps(identity, sort_keys=True, default=str)


def role_identity(specs: Sequence[ModelSpec]) -> str:
    """The identity of a role served by these endpoints: theirs, each once, sorted (the
    endpoints of one model share it)."""
    return " | ".join(sorted({reply_identity(spec) for spec in specs}))


def weights_fingerprint(directory: Path) -> str | None:
    """The size and modification time of a model directory's weight and config files,
    hashed; None when `directory` is not a directory (a Hub id: its name says it all)."""
    if not directory.is_dir():
        return None
    files = sorted(p for pattern in _WEIGHT_PATTERNS for p in directory.glob(pattern))
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def package_fingerprint(package: str) -> str | None:
    """`package==VERSION` for the installed distribution that ships a model's weights;
    None when it is not installed (the weights were fetched: one file, one version)."""
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return None
