"""The verifier: checks a final answer against the gold answer (no LLM).

By default with math-verify; a dataset that knows better what a right answer is (a
reasoning-gym task scores sequences, words, puzzles) gives its own scorer, and an
answer is correct when that scorer gives it full marks."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from math_verify import parse, verify

from journey.problems.procedural import VERIFIER_KEY, dataset_scorer
from journey.protocols.answers import extract_final_answer

_SPACE = re.compile(r"\s+")
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}")


@dataclass(frozen=True)
class Verification:
    """The verifier's result on one final answer."""

    predicted: str
    gold: str
    correct: bool
    score: float | None = None
    """The dataset scorer's score (0 to 1) where one checked; None: math-verify did."""
    scorer: str | None = None
    """The dataset scorer's name (e.g. `rg:basic_arithmetic`); None: math-verify."""


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

    def __init__(
        self,
        gold_answer: str | None = None,
        *,
        name: str = "verifier",
        scorer: Callable[[str], float] | None = None,
        scorer_name: str | None = None,
    ) -> None:
        """
        Args:
            gold_answer: The answer final answers are checked against.
            name: The agent's name in a team.
            scorer: The dataset's own scorer of an answer to this problem (0 to 1), used
                instead of math-verify; full marks (1) is correct.
            scorer_name: What the scorer is, for the log (e.g. `rg:basic_arithmetic`).
        """
        super().__init__(name, "Checks a final answer against the gold answer.")
        self.gold_answer = gold_answer
        self.scorer = scorer
        self.scorer_name = scorer_name or ("dataset" if scorer is not None else None)

    @classmethod
    def for_problem(cls, gold_answer: str, meta: Mapping[str, Any]) -> AnswerVerifier:
        """The verifier of one dataset problem: its dataset's own scorer where `meta`
        names one (a reasoning-gym task), else math-verify against `gold_answer`."""
        scorer = dataset_scorer(meta)
        if scorer is None:
            return cls(gold_answer)
        name = str(meta[VERIFIER_KEY]).partition("?")[0]  # rg:TASK
        return cls(gold_answer, scorer=scorer, scorer_name=name)

    def check(self, predicted: str, gold: str | None = None) -> Verification:
        gold = self.gold_answer if gold is None else gold
        if gold is None:
            raise ValueError("the verifier needs a gold answer")
        if self.scorer is not None and gold == self.gold_answer:
            score = self.scorer(predicted)
            return Verification(predicted, gold, score >= 1.0, score, self.scorer_name)
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
