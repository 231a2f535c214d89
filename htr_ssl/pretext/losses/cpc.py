"""InfoNCE over indexed candidates: CPC's loss (van den Oord et al. 2018) for predicted frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def indexed_logits(predictions: torch.Tensor, targets: torch.Tensor, candidates: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """Cosine similarity / temperature of each prediction to its candidate targets: (M, C), fp32.

    predictions: (M, D); targets: (N, D), the pool of true frames; candidates: (M, C) long rows
    of `targets`, column 0 the positive of each prediction, the rest its negatives.
    """
    if predictions.dim() != 2 or targets.dim() != 2 or predictions.shape[1] != targets.shape[1]:
        raise ValueError(f"predictions (M, D) and targets (N, D) must share D: "
                         f"{predictions.shape}, {targets.shape}")
    if candidates.shape[0] != predictions.shape[0]:
        raise ValueError(f"one candidate row per prediction: {candidates.shape} for "
                         f"{predictions.shape[0]} predictions")
    p = F.normalize(predictions.float(), dim=1)
    t = F.normalize(targets.float(), dim=1)
    return torch.einsum("md,mcd->mc", p, t[candidates]) / temperature


def cpc_infonce(predictions: torch.Tensor, targets: torch.Tensor, candidates: torch.Tensor,
                temperature: float = 0.1) -> torch.Tensor:
    """Cross entropy of picking the true future frame (column 0) among the candidates, mean
    over the M predictions. Targets are not detached: as in CPC, the negatives keep them from
    collapsing, and the encoder learns from both sides."""
    logits = indexed_logits(predictions, targets, candidates, temperature)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                               device=logits.device))
