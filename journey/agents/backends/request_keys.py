"""What identifies a model request: what shapes its answer, and which sample it is.

Two wrappers key requests alike: the response cache (`CachedClient`) stores answers
under the key, and `SeededClient` derives each request's sampling seed from it. A key
hashes the request's content (messages, tools, JSON mode, extra arguments) with a
**sample index**: the n-th identical request one `SampleKeys` sees gets index n, so
beam children and repeated samples stay n different requests, and a rerun that asks
the same questions gets the same keys whatever order unrelated requests arrive in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from autogen_core.models import LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends.response_store import request_key

__all__ = ["SampleKeys", "create_request"]


def create_request(
    messages: Sequence[LLMMessage],
    tools: Sequence[Tool | ToolSchema],
    tool_choice: Tool | Literal["auto", "required", "none"],
    json_output: bool | type[BaseModel] | None,
    extra_create_args: Mapping[str, Any],
) -> dict[str, Any]:
    """A `create` request's content as JSON-ready data: everything that shapes its reply."""
    return {
        "messages": [m.model_dump(mode="json") for m in messages],
        "tools": [t.schema if isinstance(t, Tool) else t for t in tools],
        "tool_choice": tool_choice if isinstance(tool_choice, str) else tool_choice.name,
        "json_output": (
            json_output.model_json_schema() if isinstance(json_output, type) else json_output
        ),
        "extra_create_args": dict(extra_create_args),
    }


class SampleKeys:
    """Keys for one client's requests: the content's hash and its sample index."""

    def __init__(self) -> None:
        self._asked: Counter[str] = Counter()

    def key(self, payload: Mapping[str, Any]) -> str:
        """The key of `payload`'s next sample (0 the first time it is asked, then 1...)."""
        base = request_key(payload)
        sample = self._asked[base]
        self._asked[base] += 1
        return request_key({"request": base, "sample": sample})
