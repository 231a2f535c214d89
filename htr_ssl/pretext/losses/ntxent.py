"""NT-Xent (normalized temperature-scaled cross entropy), the SimCLR / SeqCLR loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Contrast N pairs of instances: z1[i] and z2[i] are positives, all 2N - 2 others negatives.

    z1, z2: (N, D), not necessarily normalized. Computed in fp32 (a bf16 softmax over
    thousands of negatives is too coarse). Returns the mean over the 2N anchors.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent needs two (N, D) tensors of one shape: {z1.shape}, {z2.shape}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))  # an anchor is not its own negative
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def positive_top1(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """% of anchors in z1 whose most similar instance in z2 is their own positive (detached)."""
    sim = F.normalize(z1.detach().float(), dim=1) @ F.normalize(z2.detach().float(), dim=1).T
    return (sim.argmax(1) == torch.arange(len(z1), device=sim.device)).float().mean() * 100
