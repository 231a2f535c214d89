"""The encoder blocks' element-wise work in fewer passes over memory, for training and reading.

On a CPU a conv block's ReLU and padding mask are memory-bound passes over the biggest maps
(the first block's map of a 64 x 768 line batch is 50 MB); with fast convolutions (AMX) they
cost as much as the convolutions. Each function here computes exactly what the plain ops do.
"""

from __future__ import annotations

import torch


def valid_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, T) bool: which of T padded positions are real, for sequences of `lengths`."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def max_pool_nhwc(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Max-pool with kernel = stride over a channels-last (B, C, H, W) map, as pairwise maximums
    of strided (B, H, W, C) views: no indices, no padding logic (the size must divide by the
    kernel); on the CPU about half the time of max_pool2d's kernel."""
    b, c, h, w = x.shape
    v = x.permute(0, 2, 3, 1).reshape(b, h // kh, kh, w // kw, kw, c)
    y = v[:, :, 0]
    for i in range(1, kh):
        y = torch.maximum(y, v[:, :, i])
    out = y[:, :, :, 0]
    for j in range(1, kw):
        out = torch.maximum(out, y[:, :, :, j])
    return out.permute(0, 3, 1, 2)


def zero_columns_(x: torch.Tensor, lengths: torch.Tensor | list[int]) -> torch.Tensor:
    """Zero the columns of a (B, C, H, W) map at or beyond each sample's length, in place.

    On the CPU only the padded columns are written (with width-bucketed batches a sliver);
    elsewhere, and while compiling, one masked fill (no host sync, no per-sample kernels)."""
    width = x.shape[-1]
    if x.device.type == "cpu" and not torch.compiler.is_compiling():
        for b, n in enumerate(lengths if isinstance(lengths, list) else lengths.tolist()):
            if n < width:
                x[b, :, :, n:] = 0
        return x
    lengths = torch.as_tensor(lengths, device=x.device)
    return x.masked_fill_(~valid_mask(lengths, width)[:, None, None, :], 0)


class _ReLUMasked(torch.autograd.Function):
    """ReLU in place, then zero the padding columns. The output holds the mask: the gradient
    of mask(relu(x)) is grad * (out > 0), one pass (where mask and ReLU backward took two)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        out = zero_columns_(x.relu_(), lengths)
        ctx.mark_dirty(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out, 0), None


def relu_masked_(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """ReLU, then zero each sample's columns at or beyond its length; in place on `x` (a fresh
    BatchNorm or residual-sum output, which no backward needs)."""
    return _ReLUMasked.apply(x, lengths)
