"""The CTC head, its fp32 loss that skips unalignable samples, and greedy best-path decoding.

Ids follow ``htr_ssl.data.alphabet``: blank is 0, characters are 1..n. The loss runs in fp32
whatever the autocast context, because CTC's forward-backward and log-softmax lose too much in
bf16/fp16 and are the usual source of "the loss is NaN".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CTCHead(nn.Module):
    """Dropout + linear projection of every frame to blank + character scores."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_dim, n_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(frames))  # (B, T, ctc_size)


def ctc_min_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Frames CTC needs per sample: one per label plus one blank between each repeated pair."""
    if targets.shape[1] < 2:
        return target_lengths.clone()
    pos = torch.arange(targets.shape[1] - 1, device=targets.device)
    repeats = (targets[:, 1:] == targets[:, :-1]) & (pos[None, :] < target_lengths[:, None] - 1)
    return target_lengths + repeats.sum(1)


def ctc_loss(
    logits: torch.Tensor,
    lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean per-character CTC loss over the samples CTC can align, and which ones those were.

    A sample whose frames are too few for its text (T < L + repeated adjacent labels) has no
    valid alignment: its loss would be infinite. It is left out of the mean and reported as
    False in the returned mask, so a batch never turns NaN; if no sample is valid the loss is a
    graph-connected zero.
    """
    lengths = lengths.long()
    target_lengths = target_lengths.long()
    valid = lengths >= ctc_min_frames(targets, target_lengths)
    with torch.autocast(logits.device.type, enabled=False):
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, C)
        per_sample = F.ctc_loss(log_probs, targets.long(), lengths, target_lengths, blank=0,
                                reduction="none", zero_infinity=True)
        per_char = per_sample / target_lengths.clamp(min=1).float()
        n_valid = valid.sum()
        loss = torch.where(valid, per_char, torch.zeros_like(per_char)).sum()
        loss = loss / n_valid.clamp(min=1).float() + 0.0 * logits.float().sum()
    return loss, valid


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks (id 0)."""
    best = logits.argmax(-1).cpu()
    out: list[list[int]] = []
    for path, n in zip(best.tolist(), lengths.cpu().tolist(), strict=True):
        ids: list[int] = []
        prev = 0
        for t in path[:n]:
            if t != prev and t != 0:
                ids.append(t)
            prev = t
        out.append(ids)
    return out
