"""Smoothing: an LLM rewrites a draft long thought as fluent prose, and a checker keeps it honest.

The seed ran its tree-walk drafts through GPT-4o "to improve coherence while
preserving the reflections, corrections, and reasoning steps". A rewrite can
quietly fix a mistake, drop a failed branch or invent an answer, which would
teach the wrong lesson, so every rewrite is checked against its draft
(`FaithfulnessChecker`) and an unfaithful one is rejected, its reasons counted,
and the draft kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from autogen_core.models import ChatCompletionClient, LLMMessage, SystemMessage, UserMessage

from journey.agents.prompt_sets import PromptSet, load_prompts
from journey.agents.verifier import answers_match
from journey.errors import ConfigError
from journey.protocols import (
    REFLECTION_MARKER,
    STEP_LINE_LABEL,
    TokenUsage,
    split_reasoning,
)
from journey.protocols.answers import extract_final_answer

logger = logging.getLogger(__name__)

_STEP_REFERENCE = re.compile(r"\bsteps?\s+\d+", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_BOX_OPENER = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_PHRASE = re.compile(r"\banswer\s*(?:is\b|:)|^\s*####", re.IGNORECASE | re.MULTILINE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")
_FENCE = re.compile(r"^```[a-zA-Z]*\n(?P<body>.*)\n```$", re.DOTALL)

# The kinds of problem, the part of each reason before the colon; counted by `journey smooth`.
ANSWER_MISSING = "answer missing"
ANSWER_CHANGED = "answer changed"
NEW_ANSWER = "new answer"
FEWER_REFLECTIONS = "fewer reflections"
REFLECTION_DROPPED = "reflection dropped"
TOO_SHORT = "too short"
TOO_LONG = "too long"


def problem_kind(reason: str) -> str:
    """The kind of a checker's reason (`"answer changed: 12 became 13"` → `"answer changed"`)."""
    return reason.split(":", 1)[0]


@dataclass(frozen=True)
class FaithfulnessChecker:
    """Checks that a rewrite keeps its draft's answer, failed branches and reflections."""

    # A rewrite much shorter than its draft has lost something, a much longer one added it.
    min_length_ratio: float = field(
        default=0.5,
        metadata={"help": "Reject a rewrite shorter than this share of its draft (in characters)."},
    )
    max_length_ratio: float = field(
        default=2.0,
        metadata={"help": "Reject a rewrite longer than this multiple of its draft."},
    )

    def __post_init__(self) -> None:
        if not 0 < self.min_length_ratio <= 1 <= self.max_length_ratio:
            raise ConfigError(
                "length ratios must satisfy 0 < min <= 1 <= max, got "
                f"min={self.min_length_ratio!r}, max={self.max_length_ratio!r}"
            )

    def check(self, draft: str, rewrite: str) -> list[str]:
        """The ways `rewrite` is unfaithful to `draft`, each as "kind: detail"; empty if none.

        Checks, in order: the final answer is unchanged; no answer is marked that the
        draft did not mark, and no more answers are marked; as many reflection markers
        as the draft has; each reflection's numbers (and those of the failed step
        before it) still appear; the length is within bounds.
        """
        problems: list[str] = []
        final = extract_final_answer(draft)
        rewritten = extract_final_answer(rewrite)
        if final is not None:
            if rewritten is None:
                problems.append(f"{ANSWER_MISSING}: the draft's answer {final} is not marked")
            elif not answers_match(rewritten, final):
                problems.append(f"{ANSWER_CHANGED}: {final} became {rewritten}")
        problems.extend(_new_answers(draft, rewrite))
        had, has = len(REFLECTION_MARKER.findall(draft)), len(REFLECTION_MARKER.findall(rewrite))
        if has < had:
            problems.append(f"{FEWER_REFLECTIONS}: {has} reflection markers, the draft has {had}")
        kept = set(_NUMBER.findall(rewrite))
        for number, needed in enumerate(_reflection_numbers(draft), 1):
            missing = [n for n in needed if n not in kept]
            if missing:
                problems.append(
                    f"{REFLECTION_DROPPED}: reflection {number} lost {', '.join(missing)}"
                )
        ratio = len(rewrite.strip()) / max(len(draft.strip()), 1)
        if ratio < self.min_length_ratio:
            problems.append(f"{TOO_SHORT}: {ratio:.2f} of the draft's length")
        elif ratio > self.max_length_ratio:
            problems.append(f"{TOO_LONG}: {ratio:.2f} times the draft's length")
        return problems


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _is_reflection(paragraph: str) -> bool:
    return not STEP_LINE_LABEL.match(paragraph) and bool(REFLECTION_MARKER.search(paragraph))


def _numbers(text: str) -> list[str]:
    """Numbers of a paragraph, leaving out step numbers ("Step 3:", "go back to step 1")."""
    text = _STEP_REFERENCE.sub(" ", STEP_LINE_LABEL.sub(" ", text))
    return list(dict.fromkeys(_NUMBER.findall(text)))


def _reflection_numbers(draft: str) -> list[list[str]]:
    """For each reflection of the draft: the numbers of the reflection and of the failed
    step just before it, which together say which branch failed and why."""
    paragraphs = _paragraphs(draft)
    out: list[list[str]] = []
    for index, paragraph in enumerate(paragraphs):
        if not _is_reflection(paragraph):
            continue
        before = (
            paragraphs[index - 1] if index and not _is_reflection(paragraphs[index - 1]) else ""
        )
        out.append(list(dict.fromkeys(_numbers(before) + _numbers(paragraph))))
    return out


def _boxed(text: str) -> list[tuple[int, int]]:
    """Spans of every closed `\\boxed{...}`, opener to closing brace, in order."""
    spans: list[tuple[int, int]] = []
    for opener in _BOX_OPENER.finditer(text):
        depth = 0
        for index in range(opener.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                spans.append((opener.start(), index + 1))
                break
    return spans


def _marked_answers(text: str) -> list[str]:
    """Every answer a text marks: each non-empty box, and each "the answer is X" outside one."""
    answers: list[str] = []
    outside: list[str] = []
    last = 0
    for start, end in _boxed(text):
        if start < last:
            continue  # a box inside a box is part of the outer answer
        answer = extract_final_answer(text[start:end])
        if answer is not None:
            answers.append(answer)
        outside.append(text[last:start])
        last = end
    outside.append(text[last:])
    for sentence in _SENTENCE_BREAK.split(" ".join(outside)):
        if _ANSWER_PHRASE.search(sentence):
            phrase = extract_final_answer(sentence)
            if phrase is not None:
                answers.append(phrase)
    return answers


def _new_answers(draft: str, rewrite: str) -> Iterable[str]:
    allowed = _marked_answers(draft)
    marked = _marked_answers(rewrite)
    if len(marked) > len(allowed):
        yield f"{NEW_ANSWER}: {len(marked)} answers marked, the draft marks {len(allowed)}"
    for answer in dict.fromkeys(marked):
        if not any(answers_match(answer, old) for old in allowed):
            yield f"{NEW_ANSWER}: {answer} is not an answer of the draft"


@dataclass(frozen=True)
class SmoothingResult:
    """One smoothing: the text to keep (the rewrite if accepted, else the draft)."""

    text: str
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    """Why the rewrite was rejected; empty when accepted."""
    rewrite: str = ""
    """What the model wrote, kept even when rejected so a rejection can be inspected."""
    usage: TokenUsage = field(default_factory=TokenUsage)


class Smoother:
    """Rewrites drafts with a model and keeps only faithful rewrites.

    Args:
        client: Any model client (see `ClientPool.get`).
        checker: Judges each rewrite against its draft.
        prompts: The `smoothing` prompt set by default.
        max_tokens: Generation limit; by default four tokens per draft word plus 64,
            room for a rewrite up to about twice the draft.
    """

    def __init__(
        self,
        client: ChatCompletionClient,
        *,
        checker: FaithfulnessChecker | None = None,
        prompts: PromptSet | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.client = client
        self.checker = checker or FaithfulnessChecker()
        self.prompts = prompts or load_prompts("smoothing")
        self.max_tokens = max_tokens

    def messages(self, draft: str) -> list[LLMMessage]:
        return [
            SystemMessage(content=self.prompts.format("system")),
            UserMessage(content=self.prompts.format("rewrite", draft=draft.strip()), source="user"),
        ]

    async def smooth(self, draft: str) -> SmoothingResult:
        """Rewrite `draft`; model errors propagate so the caller can count them."""
        limit = self.max_tokens or 4 * len(draft.split()) + 64
        result = await self.client.create(
            self.messages(draft), extra_create_args={"max_tokens": limit}
        )
        content = result.content if isinstance(result.content, str) else ""
        # A reasoning model's thoughts are no part of the rewrite.
        rewrite = _strip_fence(split_reasoning(content, result.thought).answer)
        usage = TokenUsage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )
        reasons = self.checker.check(draft, rewrite)
        if result.finish_reason == "length":
            reasons.insert(0, f"{TOO_LONG}: cut off at {limit} tokens")
        if reasons:
            return SmoothingResult(
                text=draft, accepted=False, reasons=reasons, rewrite=rewrite, usage=usage
            )
        return SmoothingResult(text=rewrite, accepted=True, rewrite=rewrite, usage=usage)


def _strip_fence(text: str) -> str:
    """Models like to wrap a rewrite in a code fence; the fence is not part of it."""
    match = _FENCE.match(text)
    return match.group("body").strip() if match else text
