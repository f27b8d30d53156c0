"""Read and check training data: JSONL rows in TRL's conversational formats.

SFT rows take one of two forms:

- `{"prompt": [messages], "completion": [messages]}`: loss on the completion only.
- `{"messages": [messages]}` (what `journey export` writes): split at the **last
  assistant message** into prompt (everything before it) and completion (that reply),
  so the loss falls on the final reply only. Earlier assistant turns are context.
  (TRL's `assistant_only_loss=True` would be the alternative, but it needs a chat
  template with generation markers, and SmolLM2's has none: TRL then fails, and plain
  `messages` rows would train on every token, system and user included.)

DPO rows are `{"prompt": [messages], "chosen": [messages], "rejected": [messages]}`;
a plain-string prompt/chosen/rejected is accepted as one user/assistant message.

A message is `{"role": "system" | "user" | "assistant", "content": str}`. The first
bad line stops loading with a `DatasetError` naming `file:line`: training on data
with silently dropped rows would be worse than not training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journey.errors import DatasetError

__all__ = ["load_dpo_rows", "load_sft_rows"]

Message = dict[str, str]
_ROLES = frozenset({"system", "user", "assistant"})


class _BadRow(ValueError):
    """What is wrong with one row (the caller adds file and line)."""


def _messages(value: Any, name: str, *, default_role: str) -> list[Message]:
    if isinstance(value, str):
        if not value.strip():
            raise _BadRow(f"{name!r} is empty")
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise _BadRow(f"{name!r} must be a non-empty list of messages")
    checked: list[Message] = []
    for position, message in enumerate(value):
        where = f"{name}[{position}]"
        if not isinstance(message, dict):
            raise _BadRow(f"{where} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise _BadRow(f"{where} has role {role!r}; expected system, user or assistant")
        if not isinstance(content, str):
            raise _BadRow(f"{where} content must be a string, got {type(content).__name__}")
        checked.append({"role": role, "content": content})
    return checked


def _sft_row(value: dict[str, Any]) -> dict[str, list[Message]]:
    if "messages" in value:
        messages = _messages(value["messages"], "messages", default_role="user")
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        if last < 1:
            raise _BadRow("'messages' needs an assistant message after at least one other")
        return {"prompt": messages[:last], "completion": [messages[last]]}
    if "prompt" in value and "completion" in value:
        prompt = _messages(value["prompt"], "prompt", default_role="user")
        completion = _messages(value["completion"], "completion", default_role="assistant")
        if any(m["role"] != "assistant" for m in completion):
            raise _BadRow("'completion' must hold assistant messages only")
        return {"prompt": prompt, "completion": completion}
    raise _BadRow(
        "expected 'messages', or 'prompt' and 'completion' "
        f"(fields: {', '.join(sorted(value)) or 'none'})"
    )


def _dpo_row(value: dict[str, Any]) -> dict[str, list[Message]]:
    missing = [name for name in ("prompt", "chosen", "rejected") if name not in value]
    if missing:
        raise _BadRow(
            f"no {', '.join(map(repr, missing))} field (fields: {', '.join(sorted(value))})"
        )
    row = {
        "prompt": _messages(value["prompt"], "prompt", default_role="user"),
        "chosen": _messages(value["chosen"], "chosen", default_role="assistant"),
        "rejected": _messages(value["rejected"], "rejected", default_role="assistant"),
    }
    if row["chosen"] == row["rejected"]:
        raise _BadRow("'chosen' and 'rejected' are the same")
    return row


def _load(path: Path | str, parse: Any, what: str) -> list[dict[str, list[Message]]]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} data file {str(path)!r} does not exist")
    rows: list[dict[str, list[Message]]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError:
                raise DatasetError(f"{path}:{number}: not UTF-8") from None
            except json.JSONDecodeError as error:
                raise DatasetError(
                    f"{path}:{number}: not valid JSON: {error.msg} at column {error.colno}"
                ) from None
            if not isinstance(value, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object")
            try:
                rows.append(parse(value))
            except _BadRow as error:
                raise DatasetError(f"{path}:{number}: {error}") from None
    if not rows:
        raise DatasetError(f"{what} data file {str(path)!r} holds no rows")
    return rows


def load_sft_rows(path: Path | str) -> list[dict[str, list[Message]]]:
    """SFT rows of a JSONL file, each as `{"prompt": [...], "completion": [...]}`.

    Raises:
        DatasetError: the file is missing or empty, or a line is bad (`file:line: why`).
    """
    return _load(path, _sft_row, "SFT")


def load_dpo_rows(path: Path | str) -> list[dict[str, list[Message]]]:
    """DPO rows of a JSONL file, each as `{"prompt", "chosen", "rejected"}` message lists.

    Raises:
        DatasetError: the file is missing or empty, or a line is bad (`file:line: why`).
    """
    return _load(path, _dpo_row, "DPO")
