"""A run's response cache: every role's requests answered from it before any model.

By default a run keeps its cache in `RUN/cache/` and reads and writes it, so a run
started again from scratch (a new directory, `--cache` pointing at the old cache) or
resumed with a warm cache makes no model call it made before. A cache shared across
runs (`--cache ~/.cache/journey/responses`) lets a user change prompts or exports and
pay only for what changed. What each role's cache did is added up across every
invocation of the run in `RUN/cache.json`, which `journey stats` reads.

A job whose output is one file (`journey pairs`'s `pairs.jsonl`) keeps the same beside
it, each name with the file's stem before it (`prefix`): `pairs.cache/`,
`pairs.cache.json`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient

from journey.agents.backends.cached_client import CachedClient, CacheMode, CacheStats
from journey.agents.backends.reply_identity import role_identity
from journey.agents.backends.response_store import WRITER_FILE, ResponseStore
from journey.agents.backends.role_endpoints import role_specs
from journey.runs.files import write_atomic

__all__ = [
    "CACHE_STATS_FILE",
    "CacheSettings",
    "RunCache",
    "recorded_cache_stats",
    "write_cache_stats",
]

logger = logging.getLogger(__name__)

CACHE_STATS_FILE = "cache.json"
"""In the run directory: each role's cache counts, summed over the run's invocations."""


@dataclass(frozen=True)
class CacheSettings:
    """Where a run's response cache is and what it may do."""

    mode: CacheMode = CacheMode.READWRITE
    directory: Path | None = None
    """The cache directory; None: `cache/` in the run directory."""
    store_truncated: bool = False
    """Store replies the token limit cut off too (a rerun with a larger limit then gets
    the cut reply back instead of asking again)."""
    writer: str = WRITER_FILE
    """The file this process writes in the cache directory (one per worker across
    machines; all are read)."""

    def location(self, run_root: Path, prefix: str = "") -> Path:
        """The cache directory: the one given, else `cache/` in the run (after `prefix`)."""
        return self.directory if self.directory is not None else run_root / f"{prefix}cache"

    def record(self) -> dict[str, Any]:
        """The settings as a run's manifest keeps them."""
        where = "cache/ in the run" if self.directory is None else str(self.directory)
        return {"mode": self.mode.value, "directory": where}


class RunCache:
    """The response store of one run and a cached client per role.

    Args:
        settings: Where the cache is and what it may do (mode off: nothing is wrapped).
        run_root: The run directory (or the folder of a job's output file).
        prefix: Put before the names of the default cache and of its counts file
            ("pairs." beside `pairs.jsonl`; nothing in a run directory).
    """

    def __init__(self, settings: CacheSettings, run_root: Path, *, prefix: str = "") -> None:
        self.settings = settings
        self.run_root = run_root
        self.prefix = prefix
        self._store = (
            None
            if settings.mode is CacheMode.OFF
            else ResponseStore(settings.location(run_root, prefix), writer=_writer(settings))
        )
        self._clients: dict[str, CachedClient] = {}

    def wrap(self, role: str, client: ChatCompletionClient, spec: str) -> ChatCompletionClient:
        """`client` answering from the cache first (as is when the cache is off)."""
        if self._store is None:
            return client
        cached = CachedClient(
            client,
            self._store,
            identity=role_identity(role_specs(spec)),
            mode=self.settings.mode,
            store_truncated=self.settings.store_truncated,
        )
        self._clients[role] = cached
        return cached

    def stats(self) -> dict[str, CacheStats]:
        """What each role's cache did in this invocation."""
        return {role: client.stats for role, client in self._clients.items()}

    def save(self) -> None:
        """Add this invocation's counts to the run's `cache.json`."""
        if not self._clients:
            return
        path = self.run_root / f"{self.prefix}{CACHE_STATS_FILE}"
        totals = recorded_cache_stats(self.run_root, prefix=self.prefix)
        for role, stats in self.stats().items():
            before = totals.get(role, CacheStats())
            totals[role] = CacheStats(
                **{k: getattr(before, k) + v for k, v in stats.as_dict().items()}
            )
        write_cache_stats(path, totals)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _writer(settings: CacheSettings) -> str | None:
    return settings.writer if settings.mode.writes else None


def write_cache_stats(path: Path, totals: Mapping[str, CacheStats]) -> None:
    """Write a cache counts file: each role's counts, roles sorted."""
    text = {role: stats.as_dict() for role, stats in sorted(totals.items())}
    write_atomic(path, json.dumps(text, indent=2) + "\n")


def recorded_cache_stats(run_root: Path, *, prefix: str = "") -> dict[str, CacheStats]:
    """Each role's cache counts over the run's invocations; empty when it kept none
    (`prefix`: as `RunCache`'s)."""
    path = run_root / f"{prefix}{CACHE_STATS_FILE}"
    if not path.is_file():
        return {}
    try:
        raw: Mapping[str, Mapping[str, int]] = json.loads(path.read_text(encoding="utf-8"))
        return {role: CacheStats(**counts) for role, counts in raw.items()}
    except (ValueError, TypeError) as error:
        logger.warning("%s is damaged (%s): its cache counts start again", path, error)
        return {}
