"""The reflection vocabulary: the words that open, mark and count a reflection.

Journey writes reflections (the long-thought writers), checks that a rewrite kept
them (smoothing), and counts them in what it wrote (`journey stats`) and in what a
trained model writes (`journey eval`). Each use needs a different list, so each
list is kept here under its own name, and how they relate is said next to each:

- `REFLECTION_OPENERS` are the first words of every reflection the writers write.
- `REFLECTION_MARKERS` hold those openers and every other phrase the writers use
  in a reflection, so a faithful rewrite keeps at least as many of them.
- `TRANSCRIPT_KEYWORDS` are a coarse subset for rates over transcripts: "wait" and
  "hmm" are openers, "let me" starts each of the writers' ways back.
- `REFLECTION_KEYWORDS` and `BACKTRACK_PHRASES` are what models themselves say when
  they reconsider or go back; they share "wait", "hmm" and some ways back with the
  writers' words, but are not bound to them.
- `THOUGHT_KEYWORDS` are the words the seed counted in o1's long thoughts, and their
  common neighbours; `journey analyze` rates each per thousand tokens. They are not
  bound to the writers' words either, and hold plain connectives ("but", "so").

`phrase_pattern` matches any such list as whole words in any case, for whoever counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "BACKTRACK_PHRASES",
    "REFLECTION_KEYWORDS",
    "REFLECTION_MARKER",
    "REFLECTION_MARKERS",
    "REFLECTION_OPENERS",
    "THOUGHT_KEYWORDS",
    "TRANSCRIPT_KEYWORDS",
    "phrase_pattern",
]


REFLECTION_OPENERS: tuple[str, ...] = ("Wait,", "Hmm,", "Hold on,")
"""How the long-thought writers open a reflection ("Wait, step 3 is wrong."): rotated
so reflections do not all start alike; the first is used alone when they are not."""

REFLECTION_MARKERS: tuple[str, ...] = (
    "wait",
    "hmm",
    "hold on",
    "oops",
    "let me go back",
    "let me start over",
    "let me check",
    "let me redo",
    "let me reconsider",
    "on second thought",
    "does not seem right",
    "doesn't seem right",
    "is wrong",
    "was wrong",
    "mistake",
)
"""Words that mark a reflection or a return, matched as whole words in any case
(`REFLECTION_MARKER`). The writers' own phrases are all here: the openers, "step k is
wrong", "that does not seem right", "Let me check / redo step k", "Let me go back to
step j", "Let me start over"; the rest are what a rewriting model may say instead."""

REFLECTION_MARKER = re.compile(
    r"\b(?:" + "|".join(re.escape(marker) for marker in REFLECTION_MARKERS) + r")\b",
    re.IGNORECASE,
)
"""Any of `REFLECTION_MARKERS`, tried in their order; the smoothing checker counts these."""

TRANSCRIPT_KEYWORDS: tuple[str, ...] = ("wait", "hmm", "let me")
"""Words that mark a reflective long thought; `journey stats` reports the share of
transcripts with each. A coarse subset of `REFLECTION_MARKERS`: two openers, and the
"let me" that starts every way back the writers write."""

REFLECTION_KEYWORDS: tuple[str, ...] = (
    "wait",
    "hmm",
    "let me re-check",
    "let me recheck",
    "let me double-check",
    "let me verify",
)
"""Words that mark a model reconsidering its own reasoning (matched as whole words);
counted by `journey eval` in a model's answers. Not the writers' words: a trained model
may rephrase them, so the re-check variants it uses are here too."""

BACKTRACK_PHRASES: tuple[str, ...] = (
    "go back to step",
    "let me go back",
    "let's go back",
    "going back to",
    "backtrack",
    "start over",
    "try a different approach",
)
"""Phrases that mark a model abandoning a line of reasoning for an earlier point;
counted by `journey eval`. They include the writers' ways back ("go back to step",
"let me go back", "start over") and common ways models phrase the same move."""


THOUGHT_KEYWORDS: tuple[str, ...] = (
    "wait",
    "hmm",
    "alternatively",
    "let me check",
    "let me verify",
    "actually",
    "but",
    "so",
    "perhaps",
    "maybe",
)
"""The words the seed counted in o1's thoughts, and their common neighbours; `journey
analyze` counts each in a long thought (`journey.longthought.thought_metrics`)."""


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """Any of `phrases` as a whole word or phrase, in any case; None when none is given.

    A phrase's spaces match any run of whitespace ("let me" finds "Let\\nme"); the
    longest phrase is tried first, so "let me go back" is one match, not "let me" and
    more; a phrase is whole when no letter or digit touches either end ("re-check",
    "wait," and "step 3:" work as well as plain words).
    """
    cleaned = {" ".join(p.split()) for p in phrases if p.strip()}
    if not cleaned:
        return None
    ordered = sorted(cleaned, key=lambda p: (-len(p), p))
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
