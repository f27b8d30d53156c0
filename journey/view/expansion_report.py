"""The end of `journey expand`: what the checks did, beside the synthesis summary."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from journey.runs.expansion import ExpansionReport
from journey.view.reports import render_synthesis_report

__all__ = ["render_expansion_report"]


def render_expansion_report(report: ExpansionReport) -> Group:
    """The synthesis summary, then a table of expansions accepted and rejected by reason."""
    table = Table(title="Expansion checks", box=box.ROUNDED, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    sessions = report.accepted + report.exhausted
    rows: list[tuple[str, str]] = [
        ("accepted", f"{report.accepted} of {sessions} problems"),
        ("attempts", f"{report.attempts} ({report.acceptance_rate:.1%} accepted)"),
        ("rejected", str(report.rejected_attempts)),
    ]
    if report.exhausted:
        rows.append(("every attempt rejected", f"{report.exhausted} problems"))
    rows += [(f"  {kind}", str(count)) for kind, count in report.rejections.items()]
    for reason, count in report.without_reference.items():
        rows.append(("left out", f"{count} problem{'' if count == 1 else 's'}: {reason}"))
    for name, value in rows:
        table.add_row(name, Text(value))  # reasons quote field names: never markup
    return Group(render_synthesis_report(report.synthesis), table)
