"""Rich renderables for session events and reasoning trees.

Rendering is kept apart from the data: `SessionRenderer.renderable` maps each event
type to a rich renderable and the `Console` is injected, so the live `journey debate`
view and `journey replay` share one renderer, and tests render into a
`Console(file=io.StringIO(), width=80)` and compare text. Every renderable carries its
meaning in words and symbols (✓/✗, badges with the action name), so it still reads
with `Console(no_color=True)`.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, Group, RenderableType
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
from journey.synthesis.tree import NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "SessionRenderer",
    "action_badge",
    "render_session_summary",
    "render_tree",
    "verdict_text",
]

_STEP_CHARS = 70
"""Step text in a tree node is shortened to about this many characters."""
_TOP_SCORES = 3
"""How many action-label scores a scored critic verdict shows."""
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
    parts: list[RenderableType] = [Text(event.content)]
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
    head.append("  ")
    head.append_text(action_badge(event.action))
    parts: list[RenderableType] = [head]
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
