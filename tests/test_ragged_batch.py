"""Ragged steps: rows that feed whole prompt tails beside other rows' single tokens get
the tokens and states they would get alone. Tiny random models keep this fast and
independent of the embedded model; greedy decoding makes every row's tokens a pure
function of its prompt."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _tiny_models import TINY_DECODER
from transformers import (
    DynamicCache,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from journey.engine import _llama_forward as llama_forward
from journey.engine._key_value_pool import HEADROOM
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import Row

States = list[tuple[torch.Tensor, torch.Tensor]]
Ended = dict[str, tuple[list[int], list[int], States]]


@pytest.fixture(scope="module")
def llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**TINY_DECODER)).eval()


def _states(model: PreTrainedModel, tokens: list[int]) -> States:
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([tokens]), cache=cache, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.layers]


def _alone(model: PreTrainedModel, prompt: list[int], steps: int) -> list[int]:
    """Greedy tokens from a plain full-sequence forward pass per step (no cache)."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(steps):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


def _greedy(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def _run(
    model: PreTrainedModel,
    prompts: dict[str, list[int]],
    limits: dict[str, int],
    joins: dict[int, list[tuple[str, int]]],
) -> Ended:
    """Decode with rows joining before the given steps (name, prompt tokens already
    cached); for each row its reply, and its tokens and states when it ended."""
    batch: RaggedBatch[str] = RaggedBatch(model)
    ended: Ended = {}
    step = 0
    with torch.inference_mode():
        while step == 0 or len(batch) or any(s >= step for s in joins):
            for name, cached in joins.get(step, []):
                prompt = prompts[name]
                states = _states(model, prompt[:cached]) if cached else []
                batch.add(Row(name, prompt, limits[name]), states, prompt[cached:])
            if len(batch):
                batch.step(_greedy)
            step += 1
            done = [i for i, row in enumerate(batch.rows) if len(row.generated) >= row.limit]
            for i in done:
                row = batch.rows[i]
                ended[row.request] = (row.generated, *batch.states_of(i))
            batch.remove(done)
    return ended


def _check(
    model: PreTrainedModel, prompts: dict[str, list[int]], limits: dict[str, int], ended: Ended
) -> None:
    assert set(ended) == set(prompts)
    for name, prompt in prompts.items():
        reply, tokens, states = ended[name]
        assert reply == _alone(model, prompt, limits[name]), name
        # A finished row's states are those of its prompt and reply encoded alone
        # (all but the reply's last token, which was never fed).
        assert tokens == prompt + reply[:-1]
        for (keys, values), (want_keys, want_values) in zip(
            states, _states(model, tokens), strict=True
        ):
            torch.testing.assert_close(keys, want_keys, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(values, want_values, atol=1e-5, rtol=1e-4)


def test_rows_feeding_prompts_beside_decoding_rows_match_decoding_alone(
    llama: LlamaForCausalLM,
) -> None:
    prompts = {
        "uncached": [5, 9, 3],
        "half cached": [7, 1, 4, 4, 8, 2, 6, 3, 9, 12, 30],
        "late": [2, 2, 40, 41, 42, 43, 1, 8, 9, 10, 11, 12, 13, 14, 15],
        "one to feed": [33, 34, 35, 36],
        "reuses a slot": [50, 51, 52, 53, 54, 55],
    }
    limits = {"uncached": 3, "half cached": 9, "late": 6, "one to feed": 4, "reuses a slot": 5}
    joins = {
        0: [("uncached", 0), ("half cached", 5)],
        2: [("late", 7)],  # feeds 8 tokens while the others feed one
        5: [("one to feed", 3), ("reuses a slot", 0)],  # "uncached" left at step 3
    }
    _check(llama, prompts, limits, _run(llama, prompts, limits, joins))


def test_rows_outgrowing_their_room_and_slots_keep_their_states(llama: LlamaForCausalLM) -> None:
    torch.manual_seed(1)
    long = torch.randint(1, 64, (HEADROOM + 30,)).tolist()
    prompts = {"long": long, "short": [3, 4, 5], "grows": [9, 8, 7, 6], "fourth": [1, 2, 3, 4, 5]}
    limits = {"long": 4, "short": 2, "grows": HEADROOM + 10, "fourth": 3}
    joins = {0: [("short", 0), ("grows", 2)], 1: [("long", 10)], 3: [("fourth", 0)]}
    _check(llama, prompts, limits, _run(llama, prompts, limits, joins))


def test_biased_attention_of_qwen2_matches_decoding_alone() -> None:
    torch.manual_seed(2)
    model = Qwen2ForCausalLM(Qwen2Config(**TINY_DECODER)).eval()
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    assert llama_forward.supports(model)
    prompts = {"a": [5, 9, 3, 17], "b": [7, 1, 4, 4, 8, 2]}
    limits = {"a": 5, "b": 3}
    joins = {0: [("a", 0)], 1: [("b", 2)]}
    _check(model, prompts, limits, _run(model, prompts, limits, joins))


def _continuation_log_prob(model: PreTrainedModel, prompt: list[int], branch: list[int]) -> float:
    """Summed log-probability of `branch` after `prompt`, from one plain forward pass."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + branch])).logits[0].float()
    log_probs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return float(log_probs.gather(1, torch.tensor(branch).unsqueeze(1)).sum()) if branch else 0.0


def test_branches_are_scored_in_the_step_beside_decoding_rows(llama: LlamaForCausalLM) -> None:
    """Two scoring rows (one partly cached, with branches of different lengths and an
    empty one) join rows that decode and feed a prompt: every branch scores as it does
    after its prompt alone, and the decoding rows are untouched by the branches."""
    scored = {
        "partly cached": ([3, 8, 1, 9, 4, 4, 20], 3, [[5], [6, 7, 8], [], [5, 9]]),
        "uncached": ([11, 12, 13], 0, [[1, 2], [2, 1]]),
    }
    prompts = {"decoding": [7, 1, 4, 4, 8, 2], "joining": [30, 31, 32, 33, 34]}
    batch: RaggedBatch[str] = RaggedBatch(llama)
    with torch.inference_mode():
        batch.add(Row("decoding", prompts["decoding"], 4), [], prompts["decoding"])
        batch.step(_greedy)
        batch.add(Row("joining", prompts["joining"], 3), [], prompts["joining"])
        for name, (prompt, cached, branches) in scored.items():
            states = _states(llama, prompt[:cached]) if cached else []
            batch.add(Row(name, prompt, 1), states, prompt[cached:], branches)
        assert batch.scores_of(2) is None  # not fed yet
        batch.step(_greedy)
        for index, (name, (prompt, _, branches)) in enumerate(scored.items(), start=2):
            assert batch.rows[index].request == name
            assert batch.scores_of(index) == pytest.approx(
                [_continuation_log_prob(llama, prompt, b) for b in branches], abs=1e-4
            )
            tokens, states = batch.states_of(index)  # the prompt's, branches left out
            assert tokens == prompt
            torch.testing.assert_close(
                states[0][0], _states(llama, prompt)[0][0], atol=1e-5, rtol=1e-4
            )
        assert batch.scores_of(0) is None
        batch.remove([2, 3])
        while any(len(row.generated) < row.limit for row in batch.rows):
            batch.step(_greedy)
        for row in batch.rows:
            assert row.generated[: row.limit] == _alone(llama, row.prompt, row.limit), row.request


def test_only_the_llama_layout_is_run_ragged(llama: LlamaForCausalLM) -> None:
    assert llama_forward.supports(llama)
    sliding = Qwen2Config(**TINY_DECODER, use_sliding_window=True, sliding_window=16)
    assert not llama_forward.supports(Qwen2ForCausalLM(sliding))
    gpt2 = GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=64)
    assert not llama_forward.supports(GPT2LMHeadModel(gpt2))


@pytest.mark.parametrize("rows", [1, 2, llama_forward.SMALL_PRODUCT_ROWS, 9])
def test_linear_layers_compute_the_same_at_every_row_count(rows: int) -> None:
    torch.manual_seed(3)
    layer = torch.nn.Linear(24, 40)
    x = torch.randn(rows, 24)
    torch.testing.assert_close(
        llama_forward._linear(x, layer), F.linear(x, layer.weight, layer.bias)
    )


def test_a_row_must_feed_a_token(llama: LlamaForCausalLM) -> None:
    with pytest.raises(ValueError, match="at least one"):
        RaggedBatch(llama).add(Row("x", [1, 2], 3), _states(llama, [1, 2]), [])
