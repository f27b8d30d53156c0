"""Searching a run's long thoughts for a word or a regex, reading each transcript once.

A search over 10,000 transcripts reads 10,000 files: the app runs it in a worker
thread, and `TranscriptSearch` keeps the texts (up to a budget) and each pattern's
answer, so the next search, or the same one again, is quick.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from journey.errors import ConfigError
from journey.runs.stats import keyword_pattern
from journey.view.browse.model import RunIndex

__all__ = ["TranscriptSearch", "compile_search"]


def compile_search(text: str) -> re.Pattern[str]:
    """A transcript search: a plain word or phrase matches whole words, as `journey stats`
    counts keywords; anything else is a case-insensitive regex.

    Raises:
        ConfigError: The regex does not compile.
    """
    text = text.strip()
    if re.fullmatch(r"[\w' ]+", text):
        return keyword_pattern(text)
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as error:
        raise ConfigError(f"bad search pattern {text!r}: {error}") from None


class TranscriptSearch:
    """Finds the sessions whose long thought matches a pattern, caching what it read.

    Transcripts are read on first use (`transcript.md`, or written from the event log
    for an unfinished session), kept up to `budget_chars` characters in all, and each
    pattern's answer is cached, so searching again (or for the other run) costs nothing.
    Thread-safe enough for one worker thread at a time: the app cancels the previous one.
    """

    def __init__(self, run: RunIndex, *, budget_chars: int = 200_000_000) -> None:
        self.run = run
        self.budget_chars = budget_chars
        self._texts: dict[str, str] = {}
        self._kept = 0
        self._answers: dict[str, frozenset[str]] = {}

    def transcript(self, session_id: str) -> str:
        text = self._texts.get(session_id)
        if text is None:
            text = self.run.contents().transcript(session_id) or ""
            if self._kept + len(text) <= self.budget_chars:
                self._texts[session_id] = text
                self._kept += len(text)
        return text

    def matching(
        self,
        search: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> frozenset[str] | None:
        """The ids of the run's sessions whose transcript matches `search`.

        Args:
            search: A word or regex (see `compile_search`).
            progress: Called with (done, total) every 2,000 sessions.
            cancelled: Polled as it goes; when it returns True the search stops.

        Returns:
            The matching ids, or None if cancelled.
        """
        if search in self._answers:
            return self._answers[search]
        pattern = compile_search(search)
        ids = [row.session_id for row in self.run.rows]
        found = set()
        for done, session_id in enumerate(ids, 1):
            if pattern.search(self.transcript(session_id)):
                found.add(session_id)
            if done % 500 == 0:
                if cancelled():
                    return None
                if progress is not None and done % 2000 == 0:
                    progress(done, len(ids))
        answer = frozenset(found)
        self._answers[search] = answer
        return answer
