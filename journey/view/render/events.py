"""Rich renderables for session events: a `Panel` per turn, a `Rule` per action.

Rendering is kept apart from the data: `SessionRenderer.renderable` maps each event
type to a rich renderable and the `Console` is injected, so the live `journey debate`
view and `journey replay` share one renderer, and tests render into a
`Console(file=io.StringIO(), width=80)` and compare text. Every renderable carries its
meaning in words and symbols (✓/✗, badges with the action name), so it still reads
with `Console(no_color=True)`.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from journey.protocols import (
    Action,
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    ExpansionRejected,
    LabelScoring,
    LabelSource,
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
from journey.view.render._looks import shorten
from journey.view.render.summary import render_session_summary

__all__ = ["SessionRenderer", "action_badge", "verdict_text"]

_TOP_SCORES = 3
"""How many action-label scores a scored critic verdict shows."""
_REASONING_CHARS = 70
"""Folded thoughts show about this many characters; `--raw` shows them whole."""

_VERDICT_LOOK: dict[StepVerdict, tuple[str, str]] = {
    StepVerdict.CORRECT: ("✓ correct", "green"),
    StepVerdict.INCORRECT: ("✗ incorrect", "red"),
    StepVerdict.UNKNOWN: ("? unknown", "grey50"),
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
    line.append(shorten(reasoning, _REASONING_CHARS), style="dim")
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
        how = "scored" if event.label_scoring is not LabelScoring.FIRST_TOKEN else "first token"
        parts.append(Text(f"({how}) {scores}", style="dim"))
    if event.reward is not None:
        parts.append(Text(f"reward {event.reward:.3f}", style="dim"))
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


def _rejection_panel(event: ExpansionRejected, *, show_raw: bool) -> Panel:
    """A rejected expansion (`journey expand`): each failed check, the reply with `--raw`."""
    parts: list[RenderableType] = [Text(f"✗ {reason}", style="red") for reason in event.reasons]
    if show_raw:
        parts.append(_raw_text(event.raw))
    subtitle = Text(f"{event.usage.total} tokens · {event.latency:.1f}s", style="dim")
    return Panel(
        Group(*parts),
        title=Text(f"Expansion · attempt {event.attempt} rejected", style="bold"),
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        border_style="red",
    )


def _action_rule(event: ActionApplied) -> RenderableType | None:
    if isinstance(event.action, Continue) and event.source is Role.CRITIC:
        return None  # the critic's panel already shows its badge
    title = Text(f"→ {_action_words(event.action)} ({event.source.value})", style="bold")
    rule = Rule(title, align="left", style="dim")
    if not event.note:
        return rule
    return Group(rule, Text(event.note, style="dim"))


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
        if isinstance(event, ExpansionRejected):
            return _rejection_panel(event, show_raw=self.show_raw)
        if isinstance(event, SessionEnded):
            return render_session_summary(event)
        return None

    def show(self, event: SessionEvent) -> None:
        """Print the event's renderable, if it has one."""
        renderable = self.renderable(event)
        if renderable is not None:
            self.console.print(renderable)
