"""Linear layers with their weights packed once for oneDNN's matrix kernels.

On the CPU, `F.linear` goes to MKL's general matrix product, which reads the weight in
its plain row-major layout at every call. For the skinny products a decoder runs (one
to a few dozen rows of activations against a weight of hundreds of thousands of
elements), oneDNN's kernels over a weight reordered into their own blocked layout were
2 to 4 times faster on an AMD EPYC's AVX-512 cores: an 8-row product with a
1536 x 576 weight took 62 us against 198 us, a 1-row product with the embedded model's
49,152-row output layer 3.4 ms against 9.2 ms, a 400-row prefill product 1.7 ms against
4.0 ms. On an Intel Xeon with AMX they were mixed (the 8-row output-layer product
3.7 ms against 8.3 ms, the 8-row 1536 x 576 one 116 us against 96 us), and whole
decode steps 1.1x faster (docs/benchmarks.md). The reorder costs one pass over the
weights at load (1.6 s for the embedded model). The plain layers are dropped, but
weights loaded from a mapped file leave only page cache behind, so the packed copy is
new memory (528 MB for the embedded model); an output layer tied to the input
embeddings keeps the shared tensor, which the embedding lookup needs.

Each output row of oneDNN's product depends only on its own input row (checked at
load), so a request's tokens do not depend on what else shares its batch.

The ops are PyTorch's own (`torch.ops.mkldnn`, what `torch.compile` packs weights
with on the CPU); a build without them, a dtype they do not take, or a probe whose
result differs from `F.linear` leaves the model as it was (`pack_linears` says why).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

PROBE_TOLERANCE = 1e-4
"""Largest difference from `F.linear` allowed on the load-time probe (float32 rounding
of a different summation order is about 1e-6 here)."""


class PackedLinear(torch.nn.Module):
    """`nn.Linear` computed by oneDNN over a weight packed in its blocked layout."""

    def __init__(self, linear: torch.nn.Linear, rows_hint: int) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        with torch.no_grad():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), rows_hint)
        # A plain tensor, not a parameter: the module is for inference only.
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if not flat.is_contiguous():
            flat = flat.contiguous()
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
            flat, self.packed, self.bias, "none", [], ""
        )
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed"


def pack_linears(model: Any, *, rows_hint: int = 8) -> tuple[int, str | None]:
    """Replace every `nn.Linear` of `model` by a `PackedLinear`, if oneDNN can run them.

    Returns how many layers were packed and, when none were, why (a line to log).
    """
    reason = _cannot_pack(model)
    if reason is not None:
        return 0, reason
    packed = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, PackedLinear(child, rows_hint))
                packed += 1
    return packed, None


def _cannot_pack(model: Any) -> str | None:
    """Why this model's linear layers cannot be packed, or None if they can."""
    # torch leaves `mkldnn.is_available` unannotated.
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return "this torch build has no oneDNN"
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    if not linears:
        return "the model has no linear layers"
    dtypes = {m.weight.dtype for m in linears}
    if dtypes != {torch.float32} or any(m.weight.device.type != "cpu" for m in linears):
        return f"packed weights are for float32 on the CPU, not {sorted(map(str, dtypes))}"
    return _probe()


def _probe() -> str | None:
    """Run a small packed product against `F.linear`: None if they agree, else why."""
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(96, 80)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(80, 96, generator=generator))
        linear.bias.copy_(torch.randn(80, generator=generator))
    x = torch.randn(5, 96, generator=generator)
    try:
        with torch.inference_mode():
            layer = PackedLinear(linear, rows_hint=8)
            got, alone = layer(x), layer(x[:1])
            want = F.linear(x, linear.weight, linear.bias)
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        return f"oneDNN's packed linear failed: {type(exc).__name__}: {exc}"
    if not torch.allclose(got, want, atol=PROBE_TOLERANCE, rtol=PROBE_TOLERANCE):
        return "oneDNN's packed linear disagrees with F.linear"
    if not torch.equal(alone[0], got[0]):
        return "oneDNN's packed linear mixes rows of a batch"
    return None
