"""Gathering instances from every process, so contrastive methods see the global batch.

Every rank computes the same global loss from the gathered tensor. The backward sums all
ranks' gradients for the gathered tensor and hands each rank the rows it contributed: `world`
times the single-process gradient of those rows, which DDP's averaging turns back into exactly
the single-process gradient. Ranks may contribute different numbers of rows (SeqCLR's frame
mapping): they are padded for the collective and trimmed after.

(`torch.distributed.nn.functional.all_gather` is not used: it is deprecated, needs equal
sizes, and on gloo returns wrong gradients when the incoming gradient is not contiguous, as
after the transposes the pretexts do.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist

_local = False


@contextlib.contextmanager
def local_batch() -> Iterator[None]:
    """Gather nothing inside this block: for work one rank does alone (validation on rank 0),
    where a collective would wait forever for the other ranks."""
    global _local
    before, _local = _local, True
    try:
        yield
    finally:
        _local = before


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        size = torch.tensor([x.shape[0]], device=x.device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size)
        counts = [int(s) for s in sizes]
        padded = x.new_zeros((max(counts), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        ctx.counts, ctx.rank = counts, dist.get_rank()
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)  # all_reduce works in place
        dist.all_reduce(grad)
        start = sum(ctx.counts[: ctx.rank])
        return grad[start : start + ctx.counts[ctx.rank]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from all ranks along dim 0 (identity outside torchrun or inside
    `local_batch()`)."""
    if _local or not (dist.is_available() and dist.is_initialized()) \
            or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)
