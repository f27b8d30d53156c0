"""Rich renderables for session events and reasoning trees.

Rendering is kept apart from the data: `SessionRenderer.renderable` maps each event
type to a rich renderable and the `Console` is injected, so the live `journey debate`
view and `journey replay` share one renderer, and tests render into a
`Console(file=io.StringIO(), width=80)` and compare text. Every renderable carries its
meaning in words and symbols (✓/✗, badges with the action name), so it still reads
with `Console(no_color=True)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from journey.protocols import (
    Action,
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    LabelSource,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    ProtocolViolation,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    Terminate,
    VerifierChecked,
)
from journey.runs.stats import RunStats, SessionOverview
from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "SessionRenderer",
    "action_badge",
    "render_run_stats",
    "render_session_list",
    "render_session_summary",
    "render_tree",
    "run_names",
    "verdict_text",
]

_STEP_CHARS = 70
"""Step text in a tree node is shortened to about this many characters."""
_TOP_SCORES = 3
"""How many action-label scores a scored critic verdict shows."""
_REASONING_CHARS = 70
"""Folded thoughts show about this many characters; `--raw` shows them whole."""
_PATH_MARKER = "▶ "

_VERDICT_LOOK: dict[StepVerdict, tuple[str, str]] = {
    StepVerdict.CORRECT: ("✓ correct", "green"),
    StepVerdict.INCORRECT: ("✗ incorrect", "red"),
    StepVerdict.UNKNOWN: ("? unknown", "grey50"),
}
_LABEL_STYLE: dict[NodeLabel, str] = {
    NodeLabel.CORRECT: "green",
    NodeLabel.INCORRECT: "red",
    NodeLabel.UNKNOWN: "grey50",
}
_OUTCOME_LOOK: dict[Outcome, tuple[str, str]] = {
    Outcome.SOLVED: ("✓ solved", "bold green"),
    Outcome.FAILED: ("✗ failed", "bold red"),
    Outcome.UNVERIFIED: ("? unverified", "bold yellow"),
    Outcome.ERROR: ("✗ error", "bold red"),
}


# -- small pieces ---------------------------------------------------------------------------


def action_badge(action: Action) -> Text:
    """A reverse-video badge naming the action, e.g. `` BACKTRACK → step 2 ``.

    Args:
        action: Any protocol action.

    Returns:
        The badge; its words alone say what the action is, without colour.
    """
    if isinstance(action, Backtrack):
        return Text(f" BACKTRACK → step {action.to_step} ", style="reverse magenta")
    if isinstance(action, Reflect):
        return Text(" REFLECT ", style="reverse yellow")
    if isinstance(action, Terminate):
        return Text(" TERMINATE ", style="bold reverse blue")
    return Text(" CONTINUE ", style="reverse green")


def verdict_text(verdict: StepVerdict) -> Text:
    """The critic's verdict as ``✓ correct`` (green), ``✗ incorrect`` (red) or ``? unknown``."""
    words, style = _VERDICT_LOOK[verdict]
    return Text(words, style=style)


def _shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters: whitespace collapsed, cut with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"


def _violations_text(violations: list[ProtocolViolation]) -> Text:
    kinds = [v.kind + (" (repaired)" if v.repaired else "") for v in violations]
    return Text("protocol violations: " + ", ".join(kinds), style="dim")


def _raw_text(raw: str) -> Group:
    return Group(Rule(Text("raw reply", style="dim"), style="dim"), Text(raw, style="dim"))


def _reasoning_text(reasoning: str, *, unfold: bool) -> RenderableType:
    """A reasoning model's thoughts: folded to one line, or whole with the raw replies."""
    words = len(reasoning.split())
    head = f"thoughts · {words} word{'' if words == 1 else 's'}"
    if unfold:
        return Group(Rule(Text(head, style="dim"), style="dim"), Text(reasoning, style="dim"))
    line = Text(f"▸ {head}: ", style="dim italic")
    line.append(_shorten(reasoning, _REASONING_CHARS), style="dim")
    return line


def _action_words(action: Action) -> str:
    if isinstance(action, Backtrack):
        return f"backtrack to step {action.to_step}"
    if isinstance(action, Terminate):
        return "terminate" + (f" with answer {action.answer}" if action.answer else "")
    return action.action


# -- events ---------------------------------------------------------------------------------


def _problem_panel(event: ProblemPosed) -> Panel:
    body = Text(event.problem)
    body.append("\n\n")
    if event.gold_answer is not None:
        body.append("gold answer: ", style="bold")
        body.append(event.gold_answer)
    else:
        body.append("no gold answer: the critic decides", style="italic")
    for role, model in event.models.items():
        body.append(f"\n{role}: ", style="bold")
        body.append(model)
    return Panel(
        body,
        title=Text("Problem", style="bold"),
        title_align="left",
        subtitle=Text(event.strategy, style="dim"),
        subtitle_align="right",
        border_style="cyan",
    )


def _policy_panel(event: PolicyStepProposed, *, show_raw: bool) -> Panel:
    parts: list[RenderableType] = []
    if event.reasoning:
        parts.append(_reasoning_text(event.reasoning, unfold=show_raw))
    parts.append(Text(event.content))
    if event.final_answer is not None:
        line = Text("final answer: ", style="bold")
        line.append(event.final_answer, style="bold blue")
        parts.append(line)
    if event.violations:
        parts.append(_violations_text(event.violations))
    if show_raw:
        parts.append(_raw_text(event.raw))
    subtitle = None
    if event.usage.total or event.latency:
        subtitle = Text(f"{event.usage.total} tokens · {event.latency:.1f}s", style="dim")
    return Panel(
        Group(*parts),
        title=Text(f"Policy · turn {event.turn} · step {event.step_number}", style="bold"),
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        border_style="blue",
    )


def _critic_panel(event: CriticVerdictGiven, *, show_raw: bool) -> Panel:
    head = verdict_text(event.verdict)
    if event.source is not LabelSource.CRITIC:  # say when the label is not a stated verdict
        head.append(f" ({event.source.value.replace('_', ' ')})", style="dim")
    head.append("  ")
    head.append_text(action_badge(event.action))
    parts: list[RenderableType] = []
    if event.reasoning:
        parts.append(_reasoning_text(event.reasoning, unfold=show_raw))
    parts.append(head)
    if event.reason:
        parts.append(Text(event.reason))
    action = event.action
    critique = action.critique if isinstance(action, Backtrack | Reflect) else ""
    if critique and critique != event.reason:
        parts.append(Text("critique: ", style="bold") + Text(critique))
    if isinstance(action, Terminate) and action.reason and action.reason != event.reason:
        parts.append(Text("stop reason: ", style="bold") + Text(action.reason))
    if event.label_scores:
        top = sorted(event.label_scores.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_SCORES]
        scores = " · ".join(f"{label} {score:.2f}" for label, score in top)
        parts.append(Text(f"(scored) {scores}", style="dim"))
    if event.violations:
        parts.append(_violations_text(event.violations))
    if show_raw and event.raw:
        parts.append(_raw_text(event.raw))
    return Panel(
        Group(*parts),
        title=Text("Critic", style="bold"),
        title_align="left",
        border_style="yellow",
    )


def _verifier_line(event: VerifierChecked) -> Text:
    style = "green" if event.correct else "red"
    line = Text("Verifier: ", style="bold")
    line.append(f"{event.predicted} vs gold {event.gold} ")
    line.append("✓ correct" if event.correct else "✗ incorrect", style=f"bold {style}")
    return line


def _action_rule(event: ActionApplied) -> RenderableType | None:
    if isinstance(event.action, Continue) and event.source is Role.CRITIC:
        return None  # the critic's panel already shows its badge
    title = Text(f"→ {_action_words(event.action)} ({event.source.value})", style="bold")
    rule = Rule(title, align="left", style="dim")
    if not event.note:
        return rule
    return Group(rule, Text(event.note, style="dim"))


# -- session summary and tree ---------------------------------------------------------------


def render_session_summary(ended: SessionEnded) -> Table:
    """A two-column table summing up a finished session.

    Args:
        ended: The session's last event.

    Returns:
        Outcome, stop reason, final answer, counts, tokens per role and any error.
    """
    table = Table(
        title=Text("Session summary", style="bold"),
        show_header=False,
        box=box.ROUNDED,
        title_justify="left",
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    words, style = _OUTCOME_LOOK[ended.outcome]
    table.add_row("outcome", Text(words, style=style))
    table.add_row("stop reason", ended.stop_reason.value.replace("_", " "))
    table.add_row("final answer", Text(ended.final_answer if ended.final_answer else "—"))
    table.add_row("turns", str(ended.turn))
    table.add_row("backtracks", str(ended.backtracks))
    table.add_row("reflections", str(ended.reflections))
    table.add_row("protocol violations", str(ended.violations))
    for role in Role:
        usage = ended.usage.get(role)
        if usage is None:
            continue
        table.add_row(
            f"tokens · {role.value}",
            f"{usage.prompt_tokens:,} prompt / {usage.completion_tokens:,} completion",
        )
    if ended.error:
        table.add_row("error", Text(ended.error, style="red"))
    return table


def _node_label(node: TreeNode, *, on_path: bool) -> Text:
    style = _LABEL_STYLE[node.label]
    if node.abandoned:
        style += " dim strike"
    if on_path:
        style += " bold"
    label = Text(_PATH_MARKER if on_path else "", style="bold")
    label.append(f"{node.depth}. {_shorten(node.text, _STEP_CHARS)}", style=style)
    if node.final_answer is not None:
        label.append(f" ⇒ {_shorten(node.final_answer, _STEP_CHARS // 2)}", style="bold")
        if node.verified is not None:
            label.append(
                " ✓" if node.verified else " ✗", style="bold green" if node.verified else "bold red"
            )
    if node.abandoned:
        label.append(" (abandoned)", style="dim italic")
    return label


def render_tree(tree: ReasoningTree, *, final_node_id: int | None = None) -> Tree:
    """The reasoning tree as a rich `Tree`, children in the order they were visited.

    Args:
        tree: The tree to draw.
        final_node_id: The node whose path is drawn bold with a ``▶`` marker; by
            default the path to the tree's cursor.

    Returns:
        A rich `Tree` rooted at the (shortened) problem. Node colours follow the best
        known label (green correct, red incorrect, grey unknown); final answers show
        ``⇒ answer`` and ✓/✗ once verified; abandoned steps say ``(abandoned)``.
    """
    end = tree.cursor if final_node_id is None else final_node_id
    on_path = {n.id for n in tree.path(end)[1:]}
    visit_index = {node_id: i for i, node_id in enumerate(tree.visit_order)}
    root = Tree(Text(_shorten(tree.problem, _STEP_CHARS), style="bold"), guide_style="dim")
    stack: list[tuple[TreeNode, Tree]] = [(tree.root, root)]
    while stack:
        node, branch = stack.pop()
        children = sorted(tree.children(node.id), key=lambda c: visit_index.get(c.id, c.id))
        added = [(c, branch.add(_node_label(c, on_path=c.id in on_path))) for c in children]
        stack.extend(reversed(added))
    return root


# -- the renderer ---------------------------------------------------------------------------


class SessionRenderer:
    """Maps session events to rich renderables and prints them on an injected console."""

    def __init__(self, console: Console, *, show_raw: bool = False) -> None:
        """
        Args:
            console: Where `show` prints (a terminal, or a `StringIO` in tests).
            show_raw: Also show the models' verbatim replies.
        """
        self.console = console
        self.show_raw = show_raw

    def renderable(self, event: SessionEvent) -> RenderableType | None:
        """The renderable for one event, or None when the event is not worth showing.

        Pure: nothing is printed. A `continue` applied by the critic is skipped (its
        verdict panel already shows the badge).
        """
        if isinstance(event, ProblemPosed):
            return _problem_panel(event)
        if isinstance(event, PolicyStepProposed):
            return _policy_panel(event, show_raw=self.show_raw)
        if isinstance(event, CriticVerdictGiven):
            return _critic_panel(event, show_raw=self.show_raw)
        if isinstance(event, VerifierChecked):
            return _verifier_line(event)
        if isinstance(event, ActionApplied):
            return _action_rule(event)
        if isinstance(event, SessionEnded):
            return render_session_summary(event)
        return None

    def show(self, event: SessionEvent) -> None:
        """Print the event's renderable, if it has one."""
        renderable = self.renderable(event)
        if renderable is not None:
            self.console.print(renderable)


# -- runs -----------------------------------------------------------------------------------

_LIST_LAYOUTS = [
    *((1, chars) for chars in range(48, 23, -2)),
    *((0, chars) for chars in range(48, 11, -2)),
]
"""(column padding, problem characters) for a session listing, tried in turn until it fits."""
_ID_CHARS = 8
"""Session ids in a listing are cut to their shortest unique prefix of at least this length."""


def _outcome_text(outcome: str) -> Text:
    try:
        words, style = _OUTCOME_LOOK[Outcome(outcome)]
    except ValueError:
        words, style = f"… {outcome}", "bold yellow"
    return Text(words, style=style)


def _short_ids(ids: Sequence[str]) -> list[str]:
    """The shortest prefix length (at least `_ID_CHARS`) that keeps every id unique."""
    length = _ID_CHARS
    while len({i[:length] for i in ids}) < len(set(ids)):
        length += 1
    return [i[:length] for i in ids]


class _SessionList:
    """A session table whose problem column shrinks until the table fits the console."""

    def __init__(self, sessions: Sequence[SessionOverview]) -> None:
        self.sessions = list(sessions)

    def table(self, padding: int, problem_chars: int) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, padding),
            header_style="bold",
        )
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("session", no_wrap=True)
        table.add_column("problem", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("stop", no_wrap=True)
        for header in ("turns", "back", "refl", "viol", "tokens"):
            table.add_column(header, justify="right", no_wrap=True)
        ids = _short_ids([row.session_id for row in self.sessions])
        for number, (row, short_id) in enumerate(zip(self.sessions, ids, strict=True), 1):
            table.add_row(
                str(number),
                short_id,
                Text(_shorten(row.problem, problem_chars) or "—"),
                _outcome_text(row.outcome),
                Text((row.stop_reason or "—").replace("_", " ")),
                str(row.turns),
                str(row.backtracks),
                str(row.reflections),
                str(row.violations),
                f"{row.tokens:,}",
            )
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(10_000)  # measure the natural width, not the clamped one
        for padding, chars in _LIST_LAYOUTS:
            table = self.table(padding, chars)
            if console.measure(table, options=unbounded).maximum <= options.max_width:
                break
        yield table


def render_session_list(sessions: Sequence[SessionOverview]) -> RenderableType:
    """A run's sessions, one numbered row each (the numbers `journey replay RUN N` takes).

    Args:
        sessions: Rows from `session_overviews`, in the order to number them.

    Returns:
        A table: number, id (shortest unique prefix of 8 or more characters), problem
        (shortened to fit the console), outcome, stop reason, turns, backtracks,
        reflections, protocol violations and tokens (prompt + completion, all roles).
    """
    return _SessionList(sessions)


_Number = int | float | None


def _stat_rows(stats: RunStats) -> list[tuple[str, str, _Number]]:
    """(label, kind, value) per row; kind is "count", "rate" or "mean"."""
    rows: list[tuple[str, str, _Number]] = [
        ("sessions", "count", stats.sessions),
        ("finished", "count", stats.finished),
        ("unfinished", "count", stats.unfinished),
        ("solved", "count", stats.solved),
        ("yield (solved / finished without error)", "rate", stats.yield_rate),
    ]
    rows += [(f"outcome · {k}", "count", v) for k, v in stats.outcomes.items()]
    rows += [(f"stop · {k.replace('_', ' ')}", "count", v) for k, v in stats.stop_reasons.items()]
    rows += [
        ("mean turns", "mean", stats.mean_turns),
        ("mean backtracks", "mean", stats.mean_backtracks),
        ("mean reflections", "mean", stats.mean_reflections),
        ("mean violations", "mean", stats.mean_violations),
    ]
    rows += [(f'transcripts with "{k}"', "rate", v) for k, v in stats.keyword_rates.items()]
    rows.append(("mean transcript chars", "mean", stats.mean_transcript_chars))
    for role, used in stats.tokens.items():
        rows += [
            (f"tokens · {role} prompt", "count", used.prompt_tokens),
            (f"tokens · {role} completion", "count", used.completion_tokens),
            (f"tokens · {role} prompt / session", "mean", used.prompt_per_session),
            (f"tokens · {role} completion / session", "mean", used.completion_per_session),
        ]
    rows += [
        ("tokens / solved session", "mean", stats.tokens_per_solved),
        ("completion tokens / solved session", "mean", stats.completion_tokens_per_solved),
    ]
    return rows


def _stat_value(kind: str, value: _Number) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "mean":
        return f"{value:,.2f}"
    return f"{value:,}"


def _stat_difference(kind: str, a: _Number, b: _Number) -> Text:
    if a is None or b is None:
        return Text("—", style="dim")
    diff = b - a
    if kind == "rate":
        words = f"{100 * diff:+.1f} pp"
    elif kind == "mean":
        words = f"{diff:+,.2f}"
    else:
        words = f"{diff:+,}"
    return Text(words, style="dim" if diff == 0 else "")


def run_names(paths: Sequence[str]) -> list[str]:
    """The shortest path endings that tell runs apart: ``run``, or ``a/run`` and ``b/run``."""
    parts = [PurePath(p).parts for p in paths]
    for k in range(1, max((len(p) for p in parts), default=1) + 1):
        names = [str(PurePath(*p[-k:])) if p else "." for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(paths)


def render_run_stats(stats: Sequence[RunStats]) -> Table:
    """One run's numbers, or two runs side by side with the difference (second − first).

    Args:
        stats: One or two runs. A count only one run has (an outcome the other never
            reached) is 0 for the other; a mean or rate it lacks is ``—``.

    Returns:
        A table with a row per number, a column per run (headed by the end of its path
        that tells the runs apart): rates in percent, differences of rates in percentage points.
    """
    if not 1 <= len(stats) <= 2:
        raise ValueError(f"render_run_stats takes one or two runs, got {len(stats)}")
    per_run = [{label: (kind, value) for label, kind, value in _stat_rows(s)} for s in stats]
    labels = list(dict.fromkeys(label for rows in per_run for label in rows))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("")
    names = run_names([s.run for s in stats])
    for name in names:
        table.add_column(Text(name, overflow="fold"), justify="right")
    if len(stats) == 2:
        table.add_column("Δ", justify="right")
    for label in labels:
        kind = next(rows[label][0] for rows in per_run if label in rows)
        missing = 0 if kind == "count" else None  # an outcome a run never reached: 0 times
        values = [rows[label][1] if label in rows else missing for rows in per_run]
        cells: list[RenderableType] = [Text(label), *(_stat_value(kind, v) for v in values)]
        if len(stats) == 2:
            cells.append(_stat_difference(kind, *values))
        table.add_row(*cells)
    return table
