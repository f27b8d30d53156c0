"""What the model worker is asked to do, and what it reports: requests, replies, stats."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length"]
Chat = list[dict[str, str]]


@dataclass
class GenerationStats:
    """What a local model's worker has done so far; read it to see batching at work."""

    requests: int = 0
    """Generation requests answered."""
    batches: int = 0
    """`generate` calls; fewer than `requests` when requests shared a batch."""
    largest_batch: int = 0
    scorings: int = 0
    """Label-scoring forward passes."""
    generated_tokens: int = 0
    prompt_tokens_reused: int = 0
    """Prompt tokens whose keys and values came from the prefix cache."""
    prompt_tokens_encoded: int = 0
    """Prompt tokens the model encoded (all of them when the prefix cache is off)."""
    busy_seconds: float = 0.0
    """Time spent in `generate` and scoring forward passes."""
    packed_layers: int = 0
    """Linear layers computed over oneDNN-packed weights (`_packed_linear`)."""
    unpacked_why: str | None = None
    """Why the model's linear layers were not packed, once it has loaded."""


@dataclass(frozen=True)
class Sampling:
    """How a request's tokens are chosen. Its row samples from a random generator of its
    own, seeded with `seed` (else from the worker's stream), so what it draws does not
    depend on the rows beside it."""

    temperature: float  # 0 means greedy
    top_p: float
    seed: int | None

    def batches_with(self, other: Sampling) -> bool:
        """Whether requests with these settings may decode in one batch: every row of a
        batch has its temperature and top-p; seeds may differ."""
        return (self.temperature, self.top_p) == (other.temperature, other.top_p)


GREEDY = Sampling(0.0, 1.0, None)


@dataclass(frozen=True)
class Generated:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass
class GenerationJob:
    chat: Chat
    max_new_tokens: int
    stops: tuple[str, ...]
    sampling: Sampling
    future: concurrent.futures.Future[Generated]


@dataclass
class ScoringJob:
    chat: Chat
    prefix: str
    labels: list[str]
    future: concurrent.futures.Future[tuple[dict[str, float], int]]
    """Resolves to the scores and the number of tokens the forward pass read."""


Job = GenerationJob | ScoringJob


def cut_at_stops(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to its first stop string, and whether it had one."""
    cuts = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
