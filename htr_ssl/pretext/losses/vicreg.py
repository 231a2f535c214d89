"""VICReg (Bardes, Ponce & LeCun 2022): invariance + variance + covariance, no negatives.

Invariance pulls the two views' embeddings together; the variance hinge keeps every dimension's
standard deviation across the batch above 1 (so the embeddings cannot collapse to a point); the
covariance term pushes the dimensions apart (so they cannot collapse onto a few directions).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class VicregTerms(NamedTuple):
    invariance: torch.Tensor  # mean squared distance between the views
    variance: torch.Tensor  # mean hinge max(0, 1 - std) over dimensions, both views averaged
    covariance: torch.Tensor  # sum of squared off-diagonal covariances / D, both views averaged
    std: torch.Tensor  # mean per-dimension std of the embeddings (detached): ~0 means collapse

    def total(self, sim_weight: float = 25.0, var_weight: float = 25.0,
              cov_weight: float = 1.0) -> torch.Tensor:
        """The weighted loss; the defaults 25 / 25 / 1 are the paper's."""
        return (sim_weight * self.invariance + var_weight * self.variance
                + cov_weight * self.covariance)


def _variance(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return F.relu(1.0 - torch.sqrt(z.var(dim=0) + eps)).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / max(n - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg_terms(z1: torch.Tensor, z2: torch.Tensor) -> VicregTerms:
    """The three unweighted terms for embeddings z1, z2 of shape (N, D), in fp32."""
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ValueError(f"vicreg needs two (N >= 2, D) tensors of one shape: "
                         f"{z1.shape}, {z2.shape}")
    z1, z2 = z1.float(), z2.float()
    std = 0.5 * (z1.detach().std(dim=0).mean() + z2.detach().std(dim=0).mean())
    return VicregTerms(F.mse_loss(z1, z2), 0.5 * (_variance(z1) + _variance(z2)),
                       0.5 * (_covariance(z1) + _covariance(z2)), std)


def vicreg(z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0,
           var_weight: float = 25.0, cov_weight: float = 1.0) -> torch.Tensor:
    """The weighted VICReg loss of z1, z2 (N, D)."""
    return vicreg_terms(z1, z2).total(sim_weight, var_weight, cov_weight)
