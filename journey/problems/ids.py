"""Who a problem is: its session's id (the folder name under a run's `sessions/`) and
the key that tells two spellings of one problem apart from two problems."""

from __future__ import annotations

import hashlib


def session_id_for(problem: str) -> str:
    """A stable id for a problem, so re-runs and resumes find the same session."""
    return hashlib.sha1(problem.strip().encode("utf-8")).hexdigest()[:12]


def problem_key(problem: str) -> str:
    """A problem's text with its spacing and case evened out, to tell whether two are one."""
    return " ".join(problem.split()).casefold()
