"""`journey merge`: shard runs (or any runs of the same options) combined into one run.

Session folders are copied into `OUT/sessions/`, and `OUT/sessions.jsonl` is rewritten
with one line per finished session. When a session id appears more than once:

- a finished copy wins over an unfinished one (an unfinished one in OUT is replaced);
- a copy that finished without an error wins over a `model_error` one (a shard whose
  errors `journey synth` ran again since the last merge brings them);
- otherwise, of two finished copies the first kept wins and the other is counted as a
  duplicate (or as "already present" when it was already in OUT before this merge);
- of two unfinished copies the one with the longer event log wins (a shard resumed
  since the last merge brings its progress).

Unfinished sessions are copied too, so `journey synth --out OUT` can resume them.
Merging again into the same OUT adds only what is new: it is idempotent.

`OUT/run.json` starts as a copy of the first source's (so `journey synth` accepts OUT
as a run of the same options) and records every merge under `merged`: the sources
with their session counts and what their `spend.json` and `cache.json` held. Runs
whose `run.json` records another strategy, other models or another critic mode are
refused unless forced; the differences are then recorded as `forced`. OUT is locked
with the same lock file as `journey synth`, so a merge never writes into a run that a
synthesis is writing.

What the sources paid is summed into OUT: each role's tokens in `spend.json` (so
`journey stats OUT` prices what the merged run paid, per role) and each role's cache
counts in `cache.json`. A source adds only what it spent since OUT last merged it (the
counts recorded under `merged`), so merging again adds nothing twice; a source whose
counts went down was made again, and adds them all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from journey import __version__
from journey.agents.backends.cached_client import CacheStats
from journey.agents.backends.response_store import merge_stores
from journey.errors import ConfigError
from journey.protocols import Outcome, TokenUsage
from journey.runs.files import write_atomic
from journey.runs.manifest import ManifestFile, read_manifest, setting_changes
from journey.runs.response_cache import CACHE_STATS_FILE, recorded_cache_stats, write_cache_stats
from journey.runs.role_counts import Counts, add_counts, counts_since
from journey.runs.rundir import RUN_LOCK, SessionSummary
from journey.runs.spend import SPEND_FILE, recorded_spend, write_spend
from journey.runs.stats import RunContents, read_run
from journey.runs.synthesis_options import MATCHED_OPTIONS

__all__ = [
    "MergeReport",
    "SourceCounts",
    "add_cache_counts",
    "merge_runs",
    "recorded_cache_counts",
    "recorded_spend_counts",
]


"""Per role, named counts: what `spend.json` (tokens) or `cache.json` (hits...) holds."""


class SourceCounts(BaseModel):
    """What one source run held."""

    path: str
    finished: int
    unfinished: int
    spend: Counts = Field(default_factory=dict)
    """Its `spend.json` when merged: the tokens each role sent to its model."""
    cache: Counts = Field(default_factory=dict)
    """Its `cache.json` when merged: what each role's response cache did."""


class MergeReport(BaseModel):
    """What a merge did; `merged` in `run.json` keeps the sources and counts."""

    out: str
    sources: list[SourceCounts] = Field(default_factory=list)
    added_finished: int = 0
    added_unfinished: int = 0
    replaced: int = 0
    """Sessions in OUT, or kept earlier in this merge, replaced by a more advanced copy."""
    duplicates: int = 0
    """Sessions met twice among the sources (the first finished, else the longest, kept)."""
    already_present: int = 0
    """Sessions OUT already held in the same or a more advanced state."""
    missing: int = 0
    """Sessions indexed in a source whose folder is missing there; not copied."""
    forced: list[str] = Field(default_factory=list)
    finished: int = 0
    """Finished sessions in OUT after the merge."""
    unfinished: int = 0
    """Unfinished sessions in OUT after the merge."""
    cached_responses: int = 0
    """Responses copied from the sources' caches (`RUN/cache/`) into OUT's, new ones only."""
    spend_added: Counts = Field(default_factory=dict)
    """Per role, the tokens this merge added to OUT's `spend.json`: what the sources
    spent since OUT last merged them."""


def _read_meta(root: Path) -> ManifestFile | None:
    return read_manifest(root / "run.json")


def recorded_spend_counts(root: Path, *, prefix: str = "") -> Counts:
    """What the run (or job) in `root` spent, per role, as its spend file holds it
    (`prefix`: before the file's name, as `RequestAccounts`' files)."""
    return {role: used.model_dump() for role, used in recorded_spend(root, prefix=prefix).items()}


def recorded_cache_counts(root: Path, *, prefix: str = "") -> Counts:
    """What the response cache of the run (or job) in `root` did, per role, as its cache
    counts file holds it (`prefix`: as `recorded_spend_counts`')."""
    cache = recorded_cache_stats(root, prefix=prefix)
    return {role: stats.as_dict() for role, stats in cache.items()}


def add_cache_counts(root: Path, more: Counts, *, prefix: str = "") -> None:
    """Add `more` to the cache counts of the run (or job) in `root`, role by role."""
    counts = recorded_cache_counts(root, prefix=prefix)
    add_counts(counts, more)
    stats = {role: CacheStats(**c) for role, c in counts.items()}
    write_cache_stats(root / f"{prefix}{CACHE_STATS_FILE}", stats)


def _merged_before(meta: ManifestFile | None) -> dict[Path, SourceCounts]:
    """Each source OUT merged before, by resolved path, as its latest merge recorded it."""
    found: dict[Path, SourceCounts] = {}
    for entry in meta.settings.get("merged", []) if meta is not None else []:
        for source in entry.get("sources", []):
            counts = SourceCounts.model_validate(source)
            found[Path(counts.path).resolve()] = counts
    return found


def _sum_accounts(
    out: Path, sources: list[SourceCounts], before: dict[Path, SourceCounts]
) -> Counts:
    """Add what each source spent (and its cache did) since OUT last merged it to OUT's
    `spend.json` and `cache.json`; returns the tokens added per role."""
    spend: Counts = {}
    cache: Counts = {}
    seen: set[Path] = set()
    for source in sources:
        where = Path(source.path).resolve()
        if where in seen:  # named twice in one merge: its counts are added once
            continue
        seen.add(where)
        earlier = before.get(where)
        add_counts(spend, counts_since(source.spend, earlier.spend if earlier else {}))
        add_counts(cache, counts_since(source.cache, earlier.cache if earlier else {}))
    spend = {role: c for role, c in spend.items() if any(c.values())}
    cache = {role: c for role, c in cache.items() if any(c.values())}
    if spend:
        totals = recorded_spend_counts(out)
        add_counts(totals, spend)
        write_spend(out / SPEND_FILE, {r: TokenUsage(**c) for r, c in totals.items()})
    if cache:
        add_cache_counts(out, cache)
    return spend


def _differences(
    reference: ManifestFile | None, meta: ManifestFile | None, where: Path
) -> list[str]:
    """How the options of a run (its latest `run.json` entry) differ from the reference's."""
    recorded = reference.current if reference is not None else {}
    found = meta.current if meta is not None else {}
    return [
        f"{where} has {change.name} {change.wanted!r} (not {change.recorded!r})"
        for change in setting_changes(recorded, {key: found.get(key) for key in MATCHED_OPTIONS})
    ]


def _log_size(folder: Path) -> int:
    log = folder / "events.jsonl"
    return log.stat().st_size if log.is_file() else -1


def _ended_in_error(summary: SessionSummary) -> bool:
    return summary.outcome == Outcome.ERROR


def _copy_session(source: Path, target: Path) -> None:
    """Copy a session folder into place; an existing folder there is replaced whole."""
    staging = target.with_name(f".{target.name}.merging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if target.exists():
        old = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


class _Merger:
    def __init__(self, out: Path, report: MergeReport) -> None:
        self.out = out
        self.report = report
        existing = read_run(out) if (out / "sessions").is_dir() else None
        self.index: dict[str, SessionSummary] = {}
        self.before: set[str] = set()
        if existing is not None:
            self.index = {s.session_id: s for s in existing.finished}
            self.before = set(self.index) | {u.session_id for u in existing.unfinished}
        self.unfinished: set[str] = (
            set() if existing is None else {u.session_id for u in existing.unfinished}
        )

    def add(self, contents: RunContents) -> None:
        for summary in contents.finished:
            self._add_finished(contents.root, summary)
        for session in contents.unfinished:
            self._add_unfinished(contents.root, session.session_id)

    def _target(self, session_id: str) -> Path:
        return self.out / "sessions" / session_id

    def _add_finished(self, root: Path, summary: SessionSummary) -> None:
        sid = summary.session_id
        source = root / "sessions" / sid
        if not source.is_dir():
            self.report.missing += 1
            return
        if sid in self.index:
            if _ended_in_error(self.index[sid]) and not _ended_in_error(summary):
                _copy_session(source, self._target(sid))
                self.index[sid] = summary
                self.report.replaced += 1
            elif sid in self.before:
                self.report.already_present += 1
            else:
                self.report.duplicates += 1
            return
        _copy_session(source, self._target(sid))
        self.index[sid] = summary
        if sid in self.unfinished:
            self.unfinished.discard(sid)
            if sid in self.before:
                self.report.replaced += 1
                return
            self.report.added_unfinished -= 1  # copied earlier in this merge; now finished
        self.report.added_finished += 1

    def _add_unfinished(self, root: Path, session_id: str) -> None:
        source = root / "sessions" / session_id
        target = self._target(session_id)
        known = session_id in self.index or session_id in self.unfinished
        if session_id in self.index or (
            session_id in self.unfinished and _log_size(target) >= _log_size(source)
        ):
            if session_id in self.before:
                self.report.already_present += 1
            else:
                self.report.duplicates += 1
            return
        _copy_session(source, target)
        self.unfinished.add(session_id)
        if not known:
            self.report.added_unfinished += 1
        elif session_id in self.before:
            self.report.replaced += 1
        else:
            self.report.duplicates += 1  # a shorter copy was kept earlier in this merge

    def write_index(self) -> None:
        lines = "".join(s.model_dump_json() + "\n" for s in self.index.values())
        write_atomic(self.out / "sessions.jsonl", lines)
        self.report.finished = len(self.index)
        self.report.unfinished = len(self.unfinished)


def merge_runs(sources: Sequence[Path], out: Path, *, force: bool = False) -> MergeReport:
    """Merge the sessions of `sources` into the run directory `out` (created if needed).

    Args:
        sources: Run directories, merged in order (the first copy of a session wins).
        out: The merged run; an existing one gets only what is new.
        force: Merge runs made with other strategy, models or critic mode anyway.

    Raises:
        DatasetError: a source is not a run directory.
        ConfigError: no source, `out` is a source, the options differ (without
            `force`), or `out` is being written by `journey synth`.
    """
    if not sources:
        raise ConfigError("give at least one run directory to merge")
    out = Path(out)
    roots = [Path(s) for s in sources]
    for root in roots:
        if root.resolve() == out.resolve():
            raise ConfigError(f"--out {str(out)!r} is also a source; merge into a new directory")
    contents = [read_run(root) for root in roots]  # DatasetError for a non-run, before writing
    metas = [_read_meta(root) for root in roots]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a directory")
    existing_meta = _read_meta(out) if out.is_dir() else None
    reference = existing_meta if existing_meta is not None else metas[0]
    differences = [
        d
        for root, meta in zip(roots, metas, strict=True)
        for d in _differences(reference, meta, root)
    ]
    if differences and not force:
        raise ConfigError(f"runs differ: {'; '.join(differences)}; use --force to merge anyway")

    (out / "sessions").mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / RUN_LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(f"run directory {str(out)!r} is in use by 'journey synth'") from None
    try:
        report = MergeReport(out=str(out), forced=differences)
        merger = _Merger(out, report)
        for content in contents:
            report.sources.append(
                SourceCounts(
                    path=str(content.root),
                    finished=len(content.finished),
                    unfinished=len(content.unfinished),
                    spend=recorded_spend_counts(content.root),
                    cache=recorded_cache_counts(content.root),
                )
            )
            merger.add(content)
        merger.write_index()
        report.spend_added = _sum_accounts(out, report.sources, _merged_before(existing_meta))
        caches = [root / "cache" for root in roots if (root / "cache").is_dir()]
        if caches:
            report.cached_responses = merge_stores(caches, out / "cache")
        meta = reference if reference is not None else ManifestFile.started({})
        meta.created = meta.created or datetime.now(UTC).isoformat(timespec="seconds")
        meta.journey_version = meta.journey_version or __version__
        meta.add_entry(
            "merged",
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sources": [s.model_dump() for s in report.sources],
                **({"forced": differences} if differences else {}),
            },
        )
        write_atomic(out / "run.json", meta.to_json())
    finally:
        lock.release()
    return report
