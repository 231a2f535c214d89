"""InfoNCE over candidate targets: the wav2vec 2.0 / kraken "lacuna" loss for masked frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def candidate_logits(q: torch.Tensor, targets: torch.Tensor, distractors: torch.Tensor,
                     temperature: float, exclude_equal: bool = False) -> torch.Tensor:
    """Cosine similarity / temperature of each query to its candidates: (N, 1 + K), in fp32.

    q: (N, D) predictions for N masked frames; targets: (N, D) their true features (row i is the
    positive of query i); distractors: (N, K) long, rows of `targets` to contrast with (never i).
    Column 0 is the positive. `exclude_equal`: a distractor whose target is exactly the
    positive's (quantized targets sharing their codes) scores -inf, so it is neither a negative
    nor a tie (wav2vec 2.0 does the same).
    """
    if q.shape != targets.shape or q.dim() != 2:
        raise ValueError(f"queries and targets must be (N, D) of one shape: {q.shape}, "
                         f"{targets.shape}")
    q = F.normalize(q.float(), dim=1)
    t = F.normalize(targets.float(), dim=1)
    idx = torch.cat([torch.arange(len(q), device=q.device)[:, None], distractors], dim=1)
    logits = torch.einsum("nd,nkd->nk", q, t[idx]) / temperature
    if exclude_equal:
        same = (targets[distractors] == targets[:, None]).all(-1)
        logits = torch.cat([logits[:, :1], logits[:, 1:].masked_fill(same, float("-inf"))], 1)
    return logits


def masked_infonce(q: torch.Tensor, targets: torch.Tensor, distractors: torch.Tensor,
                   temperature: float = 0.1, exclude_equal: bool = False) -> torch.Tensor:
    """Cross entropy of picking the true target (column 0) among 1 + K candidates, mean over N."""
    return candidate_infonce(candidate_logits(q, targets, distractors, temperature,
                                              exclude_equal))


def candidate_infonce(logits: torch.Tensor) -> torch.Tensor:
    """The same from `candidate_logits`' output, so a caller that also wants the accuracy
    gathers the candidates once."""
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def candidate_top1(logits: torch.Tensor) -> torch.Tensor:
    """% of queries whose positive scores strictly above every distractor (detached).

    Strict, so a tie (two candidates with the same features, e.g. two blank frames) is a miss:
    with column 0 the positive, argmax would otherwise credit every tie as a hit.
    """
    logits = logits.detach()
    return (logits[:, 0] > logits[:, 1:].amax(1)).float().mean() * 100
