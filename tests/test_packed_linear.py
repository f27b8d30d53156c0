"""oneDNN-packed linear layers compute what `nn.Linear` does, row by row, and a model
whose layers are packed decodes as before; what cannot be packed is left alone, with
the reason."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _tiny_models import TINY_DECODER
from transformers import LlamaConfig, LlamaForCausalLM

from journey.engine import _packed_linear
from journey.engine._packed_linear import PackedLinear, pack_linears
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import Row

pytestmark = pytest.mark.skipif(
    _packed_linear._cannot_pack(torch.nn.Linear(2, 2)) is not None,
    reason="this torch build cannot pack linear layers",
)


def _linear(inputs: int, outputs: int, *, bias: bool) -> torch.nn.Linear:
    torch.manual_seed(1)
    return torch.nn.Linear(inputs, outputs, bias=bias)


def _llama(**overrides: object) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**TINY_DECODER, **overrides})).eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 3, 8, 40])
def test_a_packed_layer_computes_the_linear_product(rows: int, bias: bool) -> None:
    linear = _linear(96, 80, bias=bias)
    packed = PackedLinear(linear, rows_hint=8)
    x = torch.randn(rows, 96)
    with torch.inference_mode():
        assert torch.allclose(packed(x), linear(x), atol=1e-4, rtol=1e-4)


def test_a_packed_layer_takes_batched_and_strided_inputs() -> None:
    linear = _linear(48, 24, bias=True)
    packed = PackedLinear(linear, rows_hint=8)
    batched = torch.randn(2, 5, 48)
    strided = torch.randn(48, 6).t()  # a transposed view, not contiguous
    with torch.inference_mode():
        out = packed(batched)
        assert out.shape == (2, 5, 24)
        assert torch.allclose(out, linear(batched), atol=1e-4, rtol=1e-4)
        assert torch.allclose(packed(strided), linear(strided), atol=1e-4, rtol=1e-4)


def test_a_row_does_not_depend_on_the_rows_beside_it() -> None:
    """A request's tokens must not depend on what else shares its batch."""
    packed = PackedLinear(_linear(576, 1536, bias=False), rows_hint=8)
    x = torch.randn(12, 576)
    with torch.inference_mode():
        together = packed(x)
        for row in (0, 5, 11):
            assert torch.equal(packed(x[row : row + 1])[0], together[row])


def test_packing_replaces_every_linear_layer_and_keeps_the_logits() -> None:
    plain, model = _llama(), _llama()
    count, why = pack_linears(model)
    assert why is None
    assert count == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer; the output layer
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    ids = torch.tensor([[3, 9, 27, 17, 51, 1, 7]])
    with torch.inference_mode():
        want, got = plain(input_ids=ids).logits, model(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


def test_tied_embeddings_stay_for_the_lookup_when_the_output_layer_is_packed() -> None:
    model = _llama(tie_word_embeddings=True)
    embedding = model.model.embed_tokens.weight.clone()
    plain_logits = model(input_ids=torch.tensor([[4, 8, 15]])).logits.detach()
    pack_linears(model)
    assert isinstance(model.lm_head, PackedLinear)
    assert torch.equal(model.model.embed_tokens.weight, embedding)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([[4, 8, 15]])).logits
    assert torch.allclose(logits, plain_logits, atol=1e-4, rtol=1e-4)


def _ragged_greedy(
    model: LlamaForCausalLM, prompts: list[list[int]], steps: int
) -> list[list[int]]:
    batch: RaggedBatch[int] = RaggedBatch(model)
    with torch.inference_mode():
        for index, prompt in enumerate(prompts):
            batch.add(Row(index, prompt, steps), [], prompt)
        for _ in range(steps):
            batch.step(lambda logits: logits.argmax(dim=-1))
    return [row.generated for row in batch.rows]


def test_a_packed_model_decodes_ragged_rows_as_the_plain_one() -> None:
    prompts = [[5, 6, 7, 8, 9], [40, 2], [11, 12, 13, 14, 15, 16, 17, 18, 19]]
    plain, packed = _llama(), _llama()
    pack_linears(packed)
    assert _ragged_greedy(packed, prompts, 12) == _ragged_greedy(plain, prompts, 12)


def test_a_half_precision_model_is_left_as_it_is() -> None:
    model = _llama().to(torch.bfloat16)
    count, why = pack_linears(model)
    assert count == 0
    assert why is not None and "float32" in why
    assert type(model.lm_head) is torch.nn.Linear


def test_a_build_without_onednn_keeps_plain_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    model = _llama()
    assert pack_linears(model) == (0, "this torch build has no oneDNN")
    assert type(model.model.layers[0].mlp.up_proj) is torch.nn.Linear


def test_a_probe_that_disagrees_keeps_plain_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_one(self: PackedLinear, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch.zeros(self.out_features, self.in_features)) + 1

    monkeypatch.setattr(PackedLinear, "forward", off_by_one)
    model = _llama()
    count, why = pack_linears(model)
    assert count == 0 and why == "oneDNN's packed linear disagrees with F.linear"
    assert type(model.lm_head) is torch.nn.Linear
