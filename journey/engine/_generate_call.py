"""The batch path for models the running batch cannot hold: one `generate` call.

Used when a model's attention cache is not one growing key/value pair per layer
(sliding windows, recurrent state) or continuous batching is switched off. The rows
are left-padded into one call that runs until its longest row ends; each row still
stops on its own (end-of-turn token, stop string or its own limit) and is answered
with only what it produced. A sampled row draws from its own generator, as in a running
batch (`choose_tokens`), not from `generate`'s sampler, which draws every row from
torch's global generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from journey.engine._running_batch import choose_tokens
from journey.engine.jobs import FinishReason, cut_at_stops


def generate_rows(
    model: Any,
    prompts: list[list[int]],
    *,
    limits: list[int],
    stops: list[tuple[str, ...]],
    sampling: tuple[float, float],
    generators: Sequence[torch.Generator | None],
    pad_id: int,
    eos_ids: list[int],
    decode: Callable[[Sequence[int]], str],
) -> list[tuple[str, FinishReason, int]]:
    """Per prompt: the reply's text (cut at its first stop string), why it finished,
    and how many tokens it produced. `sampling` is (temperature, top-p); temperature
    0 decodes greedily, else row i samples from `generators[i]`. Runs under the
    caller's inference mode."""
    input_ids, attention_mask = pad_rows(prompts, pad_id, left=True)
    width = input_ids.shape[1]
    stopper = _RowStopper(decode, width, limits, stops, eos_ids)
    config = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated in transformers
        max_new_tokens=max(limits), do_sample=False, pad_token_id=pad_id, eos_token_id=eos_ids
    )
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        generation_config=config,
        stopping_criteria=StoppingCriteriaList([stopper]),
        logits_processor=LogitsProcessorList([_RowSampler(sampling, generators)]),
    )
    replies: list[tuple[str, FinishReason, int]] = []
    for row, row_stops in enumerate(stops):
        produced, why = stopper.finished[row] or (output.shape[1] - width, "length")
        text, stopped = cut_at_stops(
            decode(output[row, width : width + produced].tolist()), row_stops
        )
        replies.append((text, "length" if why == "length" and not stopped else "stop", produced))
    return replies


class _RowSampler(LogitsProcessor):
    """Chooses each row's token as `choose_tokens` does, with the row's own generator,
    and leaves it the only finite score, so that `generate`'s greedy step picks it."""

    def __init__(
        self, sampling: tuple[float, float], generators: Sequence[torch.Generator | None]
    ) -> None:
        self._temperature, self._top_p = sampling
        self._generators = generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._temperature == 0:
            return scores
        tokens = choose_tokens(scores.float(), self._temperature, self._top_p, self._generators)
        chosen = torch.full_like(scores, -float("inf"))
        chosen.scatter_(1, tokens.unsqueeze(1), 0.0)
        return chosen  # type: ignore[return-value]  # a FloatTensor, as transformers annotates


class _RowStopper(StoppingCriteria):
    """Finishes each row of a batch on its own: end-of-turn token, stop string or length.

    Records, per row, how many tokens it produced and why it finished.
    """

    def __init__(
        self,
        decode: Callable[[Sequence[int]], str],
        start: int,
        limits: list[int],
        stops: list[tuple[str, ...]],
        eos_ids: list[int],
    ) -> None:
        self._decode = decode
        self._start = start
        self._limits = limits
        self._stops = stops
        self._eos = set(eos_ids)
        self.finished: list[tuple[int, str] | None] = [None] * len(limits)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        produced = input_ids.shape[1] - self._start
        for row, record in enumerate(self.finished):
            if record is not None:
                continue
            if int(input_ids[row, -1]) in self._eos:
                self.finished[row] = (produced, "eos")
            elif self._stops[row] and self._has_stop(row, input_ids[row, self._start :]):
                self.finished[row] = (produced, "stop")
            elif produced >= self._limits[row]:
                self.finished[row] = (produced, "length")
        done = [record is not None for record in self.finished]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

    def _has_stop(self, row: int, generated: torch.Tensor) -> bool:
        text = self._decode(generated.tolist())
        return any(stop in text for stop in self._stops[row])


def pad_rows(
    rows: list[list[int]], pad_id: int, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask
