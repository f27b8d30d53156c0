"""The reasoning tree as a rich `Tree`: labels by colour and words, the final path bold."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode
from journey.view.render._looks import shorten

__all__ = ["render_tree"]

_STEP_CHARS = 70
"""Step text in a tree node is shortened to about this many characters."""
_PATH_MARKER = "▶ "

_LABEL_STYLE: dict[NodeLabel, str] = {
    NodeLabel.CORRECT: "green",
    NodeLabel.INCORRECT: "red",
    NodeLabel.UNKNOWN: "grey50",
}


def _node_label(node: TreeNode, *, on_path: bool) -> Text:
    style = _LABEL_STYLE[node.label]
    if node.abandoned:
        style += " dim strike"
    if on_path:
        style += " bold"
    label = Text(_PATH_MARKER if on_path else "", style="bold")
    label.append(f"{node.depth}. {shorten(node.text, _STEP_CHARS)}", style=style)
    if node.final_answer is not None:
        label.append(f" ⇒ {shorten(node.final_answer, _STEP_CHARS // 2)}", style="bold")
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
    root = Tree(Text(shorten(tree.problem, _STEP_CHARS), style="bold"), guide_style="dim")
    stack: list[tuple[TreeNode, Tree]] = [(tree.root, root)]
    while stack:
        node, branch = stack.pop()
        children = sorted(tree.children(node.id), key=lambda c: visit_index.get(c.id, c.id))
        added = [(c, branch.add(_node_label(c, on_path=c.id in on_path))) for c in children]
        stack.extend(reversed(added))
    return root
