"""The id of a problem's session: the folder name under a run's `sessions/`."""

from __future__ import annotations

import hashlib


def session_id_for(problem: str) -> str:
    """A stable id for a problem, so re-runs and resumes find the same session."""
    return hashlib.sha1(problem.strip().encode("utf-8")).hexdigest()[:12]
