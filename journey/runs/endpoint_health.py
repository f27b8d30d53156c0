"""When a job's endpoint is down: failures counted in a row, the role that failed, the stop.

`journey synth` and `journey eval` stop a run against a dead endpoint (a wrong URL, a
server down, a spent quota) after `DEFAULT_MAX_CONSECUTIVE_ERRORS` failures in a row,
rather than fail everything left; the run stays resumable. `RoleClient` wraps each
role's client so the stop can name the model that failed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage

from journey.agents.backends import ConcurrencyLimitedClient
from journey.errors import ConfigError, ModelUnavailableError, error_line
from journey.runs.synthesis_report import SynthesisReport

__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_ERRORS",
    "EndpointDownError",
    "ErrorStreak",
    "LastFailure",
    "RoleClient",
    "raise_unexpected",
]

DEFAULT_MAX_CONSECUTIVE_ERRORS = 20
"""Failures in a row (sessions ending as `model_error`, problems whose request failed)
after which a run stops rather than fail everything left against a dead endpoint."""


class EndpointDownError(ModelUnavailableError):
    """A run stopped: its requests failed too many times in a row (see `ErrorStreak`).

    The message is one line naming the role's model spec and its last error; what was
    done is on disk, and running the same command again resumes. `report` is what the
    synthesis did up to the stop (None for other jobs).
    """

    def __init__(self, message: str, report: SynthesisReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ErrorStreak:
    """Failures one after another with no success between: `limit` of them stop a job.

    Shared by `journey synth` (a session ending as `model_error`) and `journey eval`
    (a problem whose request failed).
    """

    limit: int = field(
        default=DEFAULT_MAX_CONSECUTIVE_ERRORS, metadata={"help": "Failures in a row; 0: never."}
    )
    count: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ConfigError(f"max consecutive errors must be 0 or more, got {self.limit!r}")

    def add(self, failed: bool) -> bool:
        """Count one more result; True when this failure is the `limit`-th in a row."""
        self.count = self.count + 1 if failed else 0
        return failed and self.count == self.limit


@dataclass
class LastFailure:
    """The last request of the run that failed: which role, and its error in one line."""

    role: str | None = None
    error: str | None = None

    def note(self, role: str, error: BaseException) -> None:
        self.role, self.error = role, error_line(error)


class RoleClient(ConcurrencyLimitedClient):
    """A role's client in a run: its request limit (if any), and its failures noted.

    Every request of the role goes through it, so a run that stops on a dead endpoint
    can say which role's model failed. Two roles on one model get one wrapper each.
    """

    def __init__(
        self, role: str, inner: ChatCompletionClient, limit: int | None, failures: LastFailure
    ) -> None:
        super().__init__(inner, limit if limit is not None else sys.maxsize)
        self._role = role
        self._failures = failures

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        try:
            return await super().create(messages, **kwargs)
        except Exception as error:
            self._failures.note(self._role, error)
            raise

    async def create_stream(
        self, messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        try:
            async for chunk in super().create_stream(messages, **kwargs):
                yield chunk
        except Exception as error:
            self._failures.note(self._role, error)
            raise

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        try:
            return await super().score_labels(messages, labels, prefix=prefix)
        except Exception as error:
            self._failures.note(self._role, error)
            raise


def raise_unexpected(results: Sequence[object]) -> None:
    """Raise the first error in `asyncio.gather(..., return_exceptions=True)`'s results
    that is not a cancellation: tasks cancelled by a stop are expected, a bug is not."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
