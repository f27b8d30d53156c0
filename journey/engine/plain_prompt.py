"""Chat messages as one plain-text prompt, for base models that have no chat template.

A base model continues text: `PlainPromptTemplate.render` writes a chat as a document
whose end is where the reply begins, with frames read from a package prompt file
(`journey/engine/prompts/plain.yaml` by default). The OpenAI-compatible backend sends
it to `/v1/completions` (`api=completions`); a local backend can do the same.

    template = load_plain_template()
    prompt = template.render(messages)   # "...Problem: ...\\n\\nStep 1: ...\\n\\n"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage

from journey.errors import ConfigError

__all__ = ["PlainPromptTemplate", "load_plain_template", "message_role", "message_text"]

_PLACEHOLDER = "{content}"
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PlainPromptTemplate:
    """Frames around each role's text; `{content}` marks where the text goes."""

    system: str
    user: str
    assistant: str
    reply: str = ""
    """Written after the last message, where the model's reply begins."""
    stop: tuple[str, ...] = ()
    """Where a reply ends, sent as stop sequences with every request."""

    def __post_init__(self) -> None:
        for role in _ROLES:
            frame = getattr(self, role)
            if frame.count(_PLACEHOLDER) != 1:
                raise ConfigError(
                    f"plain prompt frame for {role!r} must hold {_PLACEHOLDER} once, got {frame!r}"
                )

    def render(self, messages: Sequence[LLMMessage]) -> str:
        """The prompt for `messages`: every message in its frame, then `reply`.

        A final assistant message is left open (its frame stops where its text ends),
        so the model continues it: the way to force the start of a reply.
        """
        return self.render_turns([(message_role(m), message_text(m)) for m in messages])

    def render_turns(self, turns: Sequence[tuple[str, str]]) -> str:
        """As `render`, for (role, text) pairs; role is system, user or assistant."""
        parts: list[str] = []
        for index, (role, text) in enumerate(turns):
            head, tail = getattr(self, role).split(_PLACEHOLDER)
            parts.append(head + text)
            if index == len(turns) - 1 and role == "assistant":
                return "".join(parts)
            parts.append(tail)
        parts.append(self.reply)
        return "".join(parts)


def message_text(message: LLMMessage) -> str:
    """A message's text; the non-text parts of a user message (images) are left out.

    Raises:
        ConfigError: The message holds no text (a tool call or its result).
    """
    content = message.content
    if isinstance(content, str):
        return content
    if isinstance(message, UserMessage):
        return "\n".join(part for part in content if isinstance(part, str))
    raise ConfigError(f"a plain-text prompt takes text messages only, got {type(message).__name__}")


@cache
def load_plain_template(name: str = "plain") -> PlainPromptTemplate:
    """Load `journey/engine/prompts/<name>.yaml`.

    Raises:
        ConfigError: The file is missing, or its frames or stop sequences are malformed.
    """
    try:
        path = resources.files("journey.engine").joinpath("prompts", f"{name}.yaml")
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no plain prompt template {name!r} in journey/engine/prompts") from None
    data = yaml.safe_load(text)
    stop = data.get("stop", []) if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or not all(isinstance(data.get(role), str) for role in _ROLES)
        or not isinstance(data.get("reply", ""), str)
        or not isinstance(stop, list)
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise ConfigError(
            f"plain prompt template {name}.yaml must give system, user and assistant frames "
            "(strings), an optional reply string and an optional list of stop strings"
        )
    return PlainPromptTemplate(
        system=data["system"],
        user=data["user"],
        assistant=data["assistant"],
        reply=data.get("reply", ""),
        stop=tuple(stop),
    )


def message_role(message: LLMMessage) -> Literal["system", "user", "assistant"]:
    """The chat role of a system, user or assistant message.

    Raises:
        ConfigError: A tool call's result, which no plain-text prompt holds.
    """
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, UserMessage):
        return "user"
    if isinstance(message, AssistantMessage):
        return "assistant"
    raise ConfigError(f"a plain-text prompt takes text messages only, got {type(message).__name__}")
