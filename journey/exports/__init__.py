"""Exports: training sets (SFT, shortcut, DPO, PRM) from finished runs, with a card
that counts every row kept and dropped.

`export` drives an export, `options` holds its options and card, `rows` builds the rows
of each format, `token_counts` counts tokens for `max_tokens`; a session is read back in
`_finished_session` and its rows chosen in `_row_selection`.
"""

from journey.exports.export import (
    EmptyExportError,
    ExportCard,
    ExportFormat,
    ExportOptions,
    export_runs,
)

__all__ = ["EmptyExportError", "ExportCard", "ExportFormat", "ExportOptions", "export_runs"]
