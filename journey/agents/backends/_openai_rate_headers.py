"""What an OpenAI-style server says of its rate limits, and the wait it asks for.

OpenAI, and servers that copy it, answer every request with how much of the minute's
allowance is left and when it resets:

    x-ratelimit-remaining-requests: 0        x-ratelimit-reset-requests: 1.5s
    x-ratelimit-remaining-tokens: 0          x-ratelimit-reset-tokens: 6m0s

A reset is a duration (`20ms`, `1.5s`, `6m0s`, `1h2m3s`) or plain seconds. When a count
reaches 0 no request is sent before its reset (capped at `MAX_WAIT` seconds): a 429
avoided instead of retried. A response hook of the SDK's HTTP client
(`_openai_transport.openai_client`) hands every response's headers to
`ServerRateLimits.observe`; the client waits out `delay()` before each request
(`_openai_retries`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MAX_WAIT", "Answered", "ServerRateLimits", "reset_seconds"]

MAX_WAIT = 60.0
"""The longest a server's reset is waited for before a request (it may then answer 429,
which is retried as usual)."""

_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def reset_seconds(text: str | None) -> float | None:
    """A reset header's value in seconds (`1.5s`, `6m0s`, `20ms`, `30`); None when unreadable."""
    if text is None:
        return None
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


class Answered(Protocol):
    """An HTTP response as the SDK's HTTP client hands it to a hook: its headers."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def _count(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass
class ServerRateLimits:
    """The server's last word on its limits, and until when it asked for a pause."""

    clock: Callable[[], float] = time.monotonic
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    paused_until: float = 0.0
    pauses: int = 0
    """Times a response said a count was spent (each may delay the next requests)."""

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read one response's headers (any that are missing or unreadable are ignored)."""
        now = self.clock()
        for kind in ("requests", "tokens"):
            remaining = _count(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is None:
                continue
            setattr(self, f"remaining_{kind}", remaining)
            reset = reset_seconds(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining <= 0 and reset is not None:
                self.pauses += 1
                self.paused_until = max(self.paused_until, now + min(reset, MAX_WAIT))

    def delay(self) -> float:
        """Seconds to wait before the next request (0: none)."""
        return max(self.paused_until - self.clock(), 0.0)

    async def on_response(self, response: Answered) -> None:
        """The HTTP client's response hook."""
        self.observe(response.headers)
