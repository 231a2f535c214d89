"""Barlow Twins (Zbontar et al. 2021): make the views' cross-correlation matrix the identity.

Each embedding dimension is standardized over the batch, so the loss sees correlations, not
scales; the diagonal term makes each dimension agree across views (invariance), the off-diagonal
term, weighted by `lambd`, decorrelates the dimensions (no redundancy, hence no collapse).
"""

from __future__ import annotations

import torch


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(D, D) correlation between the dims of z1 and z2 over the N rows (fp32, biased std, as
    the paper's affine-free BatchNorm)."""
    z1, z2 = z1.float(), z2.float()
    z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    return z1.T @ z2 / z1.shape[0]


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2 for (N, D) embeddings (N >= 2).

    `lambd` = 0.005 is the paper's value (about 1 / D for its D = 8192 projector)."""
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ValueError(f"barlow_twins needs two (N >= 2, D) tensors of one shape: "
                         f"{z1.shape}, {z2.shape}")
    c = cross_correlation(z1, z2)
    diag = torch.diagonal(c)
    off = c.pow(2).sum() - diag.pow(2).sum()
    return (1 - diag).pow(2).sum() + lambd * off
