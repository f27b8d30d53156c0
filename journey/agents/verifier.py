"""The verifier: checks a final answer against the gold answer with math-verify (no LLM)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from math_verify import parse, verify

from journey.protocols.answers import extract_final_answer

_SPACE = re.compile(r"\s+")
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}")


@dataclass(frozen=True)
class Verification:
    """The verifier's result on one final answer."""

    predicted: str
    gold: str
    correct: bool


def _normalise(answer: str) -> str:
    """The plain-string fallback when math-verify cannot parse either side."""
    answer = _TEXT_WRAPPER.sub(r"\1", answer)
    return _SPACE.sub("", answer.strip().strip("$").rstrip(".")).lower()


def _as_latex(answer: str) -> str:
    return answer if "$" in answer or "\\boxed" in answer else f"${answer}$"


def answers_match(predicted: str, gold: str) -> bool:
    """True when `predicted` is mathematically equivalent to `gold`.

    math-verify handles fractions vs decimals, intervals, tuples, LaTeX wrappers;
    when it cannot parse an answer at all, normalised strings are compared.
    """
    if _normalise(predicted) == _normalise(gold):
        return True
    # math-verify guards its sympy work with SIGALRM, which exists only on the main thread.
    on_main = threading.current_thread() is threading.main_thread()
    timeout = 5 if on_main else None
    gold_parsed = parse(_as_latex(gold), parsing_timeout=timeout)
    predicted_parsed = parse(_as_latex(predicted), parsing_timeout=timeout)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=timeout))


class AnswerVerifier(BaseChatAgent):
    """Checks final answers against a gold answer.

    Used directly by the debate engine (`check`), and as an AutoGen chat agent in a
    team: it reads the final answer marked in the last message and replies
    "correct" or "incorrect".
    """

    def __init__(self, gold_answer: str | None = None, *, name: str = "verifier") -> None:
        super().__init__(name, "Checks a final answer against the gold answer with math-verify.")
        self.gold_answer = gold_answer

    def check(self, predicted: str, gold: str | None = None) -> Verification:
        gold = self.gold_answer if gold is None else gold
        if gold is None:
            raise ValueError("the verifier needs a gold answer")
        return Verification(predicted=predicted, gold=gold, correct=answers_match(predicted, gold))

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    async def on_messages(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> Response:
        text = messages[-1].to_model_text() if messages else ""
        answer = extract_final_answer(text)
        if answer is None or self.gold_answer is None:
            reply = "no final answer to check" if answer is None else "no gold answer"
        else:
            reply = "correct" if self.check(answer).correct else "incorrect"
        return Response(chat_message=TextMessage(content=reply, source=self.name))

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        return None
