"""Exports: training sets (SFT, shortcut, DPO, PRM) from finished runs, with a card
that counts every row kept and dropped."""

from journey.exports.export import (
    EmptyExportError,
    ExportCard,
    ExportFormat,
    ExportOptions,
    export_runs,
)

__all__ = ["EmptyExportError", "ExportCard", "ExportFormat", "ExportOptions", "export_runs"]
