"""A learnable product quantizer with Gumbel-softmax code choice (wav2vec 2.0; PerSec's targets).

Each input vector picks one code in each of `groups` codebooks of `codes` entries (a linear
layer gives the logits); the chosen entries, concatenated, are the quantized vector. In
training the choice is a straight-through Gumbel-softmax sample at temperature `tau` (hard in
the forward pass, soft gradients into the logits), at evaluation the argmax. The caller anneals
`tau` (high: explore codes; low: commit) and adds `losses/diversity.py` on the returned
probabilities so that the codes are all used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GumbelQuantizer(nn.Module):
    def __init__(self, dim_in: int, dim: int, groups: int, codes: int) -> None:
        super().__init__()
        if dim % groups:
            raise ValueError(f"the quantized size {dim} must divide into {groups} codebooks")
        self.groups, self.codes = groups, codes
        self.logits = nn.Linear(dim_in, groups * codes)
        self.codebook = nn.Parameter(torch.rand(groups, codes, dim // groups))  # as wav2vec 2.0

    def forward(self, x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, dim_in) -> (quantized (N, dim), code probabilities (N, groups, codes))."""
        logits = self.logits(x).float().unflatten(-1, (self.groups, self.codes))
        if self.training:
            choice = F.gumbel_softmax(logits, tau=tau, hard=True)
        else:
            choice = F.one_hot(logits.argmax(-1), self.codes).float()
        quantized = torch.einsum("ngv,gvd->ngd", choice, self.codebook.float()).flatten(1)
        return quantized, logits.softmax(-1)


def annealed_tau(start: float, end: float, step: int, steps: int) -> float:
    """Geometric from `start` at step 0 to `end` at `steps`, then `end` (wav2vec 2.0 decays it
    by a constant factor per update; here the factor follows from the run's length)."""
    if steps <= 0 or step >= steps:
        return end
    return start * (end / start) ** (step / steps)
