"""The four actions of the journey protocol and their arguments."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ActionName(StrEnum):
    CONTINUE = "continue"
    BACKTRACK = "backtrack"
    REFLECT = "reflect"
    TERMINATE = "terminate"


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Continue(_Action):
    """The step is accepted: ask for the next one."""

    action: Literal["continue"] = "continue"


class Backtrack(_Action):
    """Return to step `to_step` (0 = the problem); the steps after it are abandoned."""

    action: Literal["backtrack"] = "backtrack"
    to_step: int = Field(ge=0, description="Step number on the current path to return to.")
    critique: str = ""


class Reflect(_Action):
    """Feed the critique back: the policy reconsiders the step it just wrote."""

    action: Literal["reflect"] = "reflect"
    critique: str = ""


class Terminate(_Action):
    """Stop the session, with the final answer or the reason to stop."""

    action: Literal["terminate"] = "terminate"
    answer: str | None = None
    reason: str | None = None


Action = Annotated[Continue | Backtrack | Reflect | Terminate, Field(discriminator="action")]
