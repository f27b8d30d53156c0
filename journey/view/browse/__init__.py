"""`journey browse`: an interactive terminal browser over one run or several side by side.

`model` holds the rows, filters and sorting, `search` the transcript search, `detail`
one session's files, `panes` their rich renderables (none of these imports Textual);
`table`, `detail_tabs` and `app` are the Textual widgets, imported only when the
browser starts.
"""

from journey.view.browse.detail import SessionDetail, load_detail
from journey.view.browse.model import (
    MAX_RUNS,
    OutcomeClass,
    RunIndex,
    SessionFilter,
    SessionPair,
    SortKey,
    load_run,
    outcome_class,
    pair_runs,
    run_label,
    sort_pairs,
    visible_pairs,
)
from journey.view.browse.search import TranscriptSearch, compile_search

__all__ = [
    "MAX_RUNS",
    "OutcomeClass",
    "RunIndex",
    "SessionDetail",
    "SessionFilter",
    "SessionPair",
    "SortKey",
    "TranscriptSearch",
    "compile_search",
    "load_detail",
    "load_run",
    "outcome_class",
    "pair_runs",
    "run_label",
    "sort_pairs",
    "visible_pairs",
]
