"""Gathering instances from every process, so contrastive methods see the global batch.

`torch.distributed.nn.functional.all_gather` passes gradients back to the rank that produced
each slice. Every rank then computes the same global loss; DDP's gradient averaging turns the
`world` identical copies back into exactly the single-process gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from all ranks along dim 0 (identity outside torchrun)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)
