"""Find the final answer a reply marks.

A reply marks its final answer in one of these ways, tried in this order:

1. `\\boxed{...}` or `\\fbox{...}`: the last non-empty box wins. Braces nest
   (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`); a box that never closes (a
   reply cut off mid-answer) or an empty `\\boxed{}` marks nothing.
2. A line `#### answer` (GSM8K style): the last such line.
3. "final answer is X" / "final answer: X": the last such phrase.
4. "the answer is X": the last such phrase.

For the phrase forms X runs to the end of its sentence: the end of the line,
or a period followed by a space (so `3.14` stays whole). Every answer is
cleaned the same way: surrounding whitespace, `$...$`, `\\(...\\)`,
`\\[...\\]` and `**bold**` delimiters and a trailing period are stripped. An
answer that is empty after cleaning marks nothing.
"""

from __future__ import annotations

import re

__all__ = ["extract_final_answer", "has_final_answer"]

_BOX_OPENER = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASH_LINE = re.compile(r"^[ \t]*####(?!#)[ \t]*(?P<answer>[^\n]*)$", re.MULTILINE)
# A markdown heading such as "#### Step 2: ..." is not a GSM8K-style answer line.
_HEADING = re.compile(r"^(?:step|solution|final\s+answer|answer)\b|:$", re.IGNORECASE)
# The answer sits in a lookahead so that a phrase inside an earlier phrase's answer is
# still found ("Final Answer: The final answer is 42" gives 42); its length is capped so
# that many phrases on one long line stay cheap to read.
_FINAL_ANSWER = re.compile(
    r"final[ \t]+answer[*_ \t]*(?:is[ \t]*:?|:|=)[*_ \t]*(?=(?P<answer>[^\n]{0,1000}))",
    re.IGNORECASE,
)
_THE_ANSWER = re.compile(
    r"\bthe[ \t]+answer[ \t]+is[ \t]*:?[*_ \t]*(?=(?P<answer>[^\n]{0,1000}))", re.IGNORECASE
)
# A sentence ends at a period followed by whitespace, so "3.14" stays whole.
_SENTENCE_END = re.compile(r"\.(?=\s)")
_ANY_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))


def extract_final_answer(text: str) -> str | None:
    """The final answer `text` marks, or None when it marks none.

    Args:
        text: A model reply, or any text that may contain a marked answer.

    Returns:
        The answer, cleaned of delimiters; None when nothing is marked or the
        marked answer is empty.
    """
    for find in (_last_boxed, _last_hash_line, _last_final_answer_phrase, _last_answer_phrase):
        answer = find(text)
        if answer is not None:
            return answer
    return None


def has_final_answer(text: str) -> bool:
    """True when `text` marks a non-empty final answer (see `extract_final_answer`)."""
    return extract_final_answer(text) is not None


def _last_boxed(text: str) -> str | None:
    openers = list(_BOX_OPENER.finditer(text))
    if not openers:
        return None
    closing = _matching_braces(text)
    for opener in reversed(openers):
        brace = opener.end() - 1
        if brace in closing:  # an unclosed box marks nothing
            cleaned = _clean(text[brace + 1 : closing[brace]])
            if cleaned is not None:
                return cleaned
    return None


def _matching_braces(text: str) -> dict[int, int]:
    """Position of the closing brace for every opening brace that is closed, in one pass."""
    closing: dict[int, int] = {}
    open_braces: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2  # an escaped character, `\{` or `\}` included, never opens or closes
            continue
        if char == "{":
            open_braces.append(index)
        elif char == "}" and open_braces:
            closing[open_braces.pop()] = index
        index += 1
    return closing


def _last_hash_line(text: str) -> str | None:
    found: str | None = None
    for match in _HASH_LINE.finditer(text):
        answer = _clean(match.group("answer"))
        if answer is not None and _HEADING.search(answer) is None:
            found = answer
    return found


def _last_final_answer_phrase(text: str) -> str | None:
    return _last_phrase_answer(_FINAL_ANSWER, text)


def _last_answer_phrase(text: str) -> str | None:
    return _last_phrase_answer(_THE_ANSWER, text)


def _last_phrase_answer(pattern: re.Pattern[str], text: str) -> str | None:
    found: str | None = None
    for match in pattern.finditer(text):
        answer = _clean(_first_sentence(match.group("answer")))
        # A box here was empty or unclosed: the box rule already found it marks nothing.
        if answer is not None and _ANY_BOX.search(answer) is None:
            found = answer
    return found


def _first_sentence(text: str) -> str:
    # A period inside $...$ never ends the sentence: skip past math before looking.
    outside = _mask_math(text)
    end = _SENTENCE_END.search(outside)
    return text if end is None else text[: end.start()]


def _mask_math(text: str) -> str:
    """`text` with everything between `$` signs replaced by spaces (same length)."""
    parts = text.split("$")
    for index in range(1, len(parts), 2):
        if index < len(parts) - 1:  # an unpaired `$` masks nothing after it
            parts[index] = " " * len(parts[index])
    return "$".join(parts)


def _clean(answer: str) -> str | None:
    """Strip whitespace, delimiters and a trailing period until nothing changes; None if empty."""
    previous = None
    while answer != previous:
        previous = answer
        answer = answer.strip()
        answer = answer.removesuffix(".").rstrip()
        for opening, closing in _DELIMITERS:
            if len(answer) < len(opening) + len(closing):
                continue
            if not (answer.startswith(opening) and answer.endswith(closing)):
                continue
            inner = answer[len(opening) : len(answer) - len(closing)]
            if closing not in inner:  # "$a$ and $b$" is not one delimited answer
                answer = inner
                break
    return answer or None
