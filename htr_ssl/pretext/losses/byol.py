"""The bootstrap loss of BYOL and SimSiam: normalized MSE between a prediction and a target."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean over N instances of ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z), in [0, 4].

    p, z: (N, D). `z` is the target: it is detached here, so the stop-gradient that keeps
    BYOL/SimSiam from collapsing cannot be forgotten by a caller. Computed in fp32. BYOL writes
    the loss this way; SimSiam's -cos(p, z) is the same up to 2x and a constant.
    """
    if p.shape != z.shape or p.dim() != 2:
        raise ValueError(f"normalized_mse needs two (N, D) tensors of one shape: {p.shape}, "
                         f"{z.shape}")
    p = F.normalize(p.float(), dim=1)
    z = F.normalize(z.detach().float(), dim=1)
    return (2 - 2 * (p * z).sum(1)).mean()
