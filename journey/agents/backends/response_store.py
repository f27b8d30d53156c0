"""Where cached model responses live: SQLite files in one cache directory.

A cache directory holds one or more `*.sqlite` files. A process writes to one of them
(its `writer` file, `responses.sqlite` unless told otherwise) and reads them all, its
own first. SQLite in WAL mode lets several processes on one machine share a file
safely; across machines, where a database on shared storage is not safe, each worker
writes its own file and reads the others' (opened read-only), and `merge_stores`
folds them into one.

A row is a response as JSON under the hex key `request_key` gives, with the tokens it
cost, so that a hit can say what it saved. The key format is versioned
(`KEY_FORMAT`): a change to what goes into a key changes the version, and keys of
another version never match.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KEY_FORMAT",
    "WRITER_FILE",
    "CachedResponse",
    "ResponseStore",
    "merge_stores",
    "request_key",
]

KEY_FORMAT = 1
"""The version of what `request_key` hashes; part of every key."""

WRITER_FILE = "responses.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""


def request_key(payload: Mapping[str, Any]) -> str:
    """The hex key of a request: a hash of `payload` (everything that shapes the answer)
    as canonical JSON, with the key format's version."""
    canonical = json.dumps(
        {"key_format": KEY_FORMAT, **payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """One stored response and what it cost when it was made."""

    kind: str
    value: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to one cache file, closed on leaving the block."""
    connection = _connect(path, read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30
        )
    else:
        connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(_SCHEMA)
        connection.commit()
    return connection


class ResponseStore:
    """The responses in one cache directory: read from every file, written to one.

    Args:
        directory: The cache directory (created when the store writes).
        writer: The file this process writes, inside `directory`; None for a store that
            only reads.
    """

    def __init__(self, directory: Path, *, writer: str | None = WRITER_FILE) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        if writer is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.directory / writer, read_only=False)
        self._writer_path = None if writer is None else self.directory / writer
        self._readers: dict[Path, sqlite3.Connection] = {}

    def _other_files(self) -> list[Path]:
        """The directory's other cache files, opened read-only as they appear."""
        if not self.directory.is_dir():
            return []
        found = sorted(p for p in self.directory.glob("*.sqlite") if p != self._writer_path)
        for path in found:
            if path not in self._readers:
                self._readers[path] = _connect(path, read_only=True)
        return found

    def get(self, key: str) -> CachedResponse | None:
        """The response stored under `key` in any of the directory's files, or None."""
        with self._lock:
            connections = [] if self._writer is None else [self._writer]
            connections += [self._readers[p] for p in self._other_files()]
            for connection in connections:
                try:
                    row = connection.execute(
                        "SELECT kind, value, prompt_tokens, completion_tokens "
                        "FROM responses WHERE key = ?",
                        (key,),
                    ).fetchone()
                except sqlite3.OperationalError:  # another writer's file not yet set up
                    continue
                if row is not None:
                    return CachedResponse(*row)
        return None

    def put(self, key: str, response: CachedResponse) -> None:
        """Store `response` under `key` (the first answer stored for a key stays)."""
        writer = self._writing()
        with self._lock:
            writer.execute(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    response.kind,
                    response.value,
                    response.prompt_tokens,
                    response.completion_tokens,
                    time.time(),
                ),
            )
            writer.commit()

    def absorb(self, path: Path) -> int:
        """Copy the responses of the cache file `path` into the writer file (keys it
        has already keep their answer); return how many were new."""
        writer = self._writing()
        if self._writer_path is not None and path.resolve() == self._writer_path.resolve():
            return 0
        with _reading(path) as reader:
            rows = reader.execute(
                "SELECT key, kind, value, prompt_tokens, completion_tokens, created FROM responses"
            ).fetchall()
        with self._lock:
            before = writer.total_changes
            writer.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
            writer.commit()
            return writer.total_changes - before

    def _writing(self) -> sqlite3.Connection:
        if self._writer is None:
            raise ValueError(f"the response store at {self.directory} only reads")
        return self._writer

    def __len__(self) -> int:
        """Distinct keys over every file of the directory."""
        keys: set[str] = set()
        for path in sorted(self.directory.glob("*.sqlite")) if self.directory.is_dir() else []:
            with _reading(path) as connection:
                keys.update(row[0] for row in connection.execute("SELECT key FROM responses"))
        return len(keys)

    def close(self) -> None:
        with self._lock:
            for connection in [*self._readers.values(), *([self._writer] if self._writer else [])]:
                connection.close()
            self._readers.clear()
            self._writer = None


def merge_stores(sources: Iterable[Path], destination: Path) -> int:
    """Copy every response in the cache directories `sources` into `destination`'s
    writer file; return how many keys were new there."""
    store = ResponseStore(destination)
    try:
        return sum(
            store.absorb(path)
            for source in sources
            for path in sorted(Path(source).glob("*.sqlite"))
        )
    finally:
        store.close()
