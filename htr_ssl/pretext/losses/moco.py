"""MoCo's InfoNCE (He et al. 2020): a query against its key, the batch's other keys and a queue."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def moco_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
                ) -> torch.Tensor:
    """Cosine similarity / temperature of each query to every key, then every queue row:
    (N, N + K) in fp32, column i the positive of query i.

    q: (N, D) online queries; k: (N, D) momentum keys, row i from the same instance as q[i]
    (the other rows are negatives, as in MoCo v3); queue: (K, D) negatives from past steps
    (K may be 0). Keys and queue are targets: detached here.
    """
    if q.shape != k.shape or q.dim() != 2 or queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"moco needs (N, D) queries and keys and a (K, D) queue: {q.shape}, "
                         f"{k.shape}, {queue.shape}")
    q = F.normalize(q.float(), dim=1)
    keys = F.normalize(torch.cat([k.detach(), queue.detach().to(k.dtype)]).float(), dim=1)
    return q @ keys.T / temperature


def moco_infonce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor,
                 temperature: float = 0.2) -> torch.Tensor:
    """Cross entropy of picking the own key among keys and queue, mean over the N queries.
    0.2 is MoCo v2's temperature."""
    return logits_infonce(moco_logits(q, k, queue, temperature))


def moco_top1(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
    """% of queries whose most similar candidate (keys and queue) is their own key (detached)."""
    return logits_top1(moco_logits(q.detach(), k, queue, 1.0))


def logits_infonce(logits: torch.Tensor) -> torch.Tensor:
    """moco_infonce from `moco_logits`' output (a caller that also wants the accuracies
    computes the similarities once)."""
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def logits_top1(logits: torch.Tensor) -> torch.Tensor:
    """moco_top1 from `moco_logits`' output, at any temperature; `logits[:, :N]` gives the
    batch's keys alone."""
    hits = logits.detach().argmax(1) == torch.arange(len(logits), device=logits.device)
    return hits.float().mean() * 100
