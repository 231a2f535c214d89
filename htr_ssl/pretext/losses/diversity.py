"""wav2vec 2.0's codebook diversity loss (Baevski et al. 2020): use every code of a quantizer.

Without it a learnable quantizer can map every frame to the same few codes, and a contrastive
task over quantized targets becomes trivial (every target alike) or impossible (every target
the same).
"""

from __future__ import annotations

import torch


def codebook_perplexity(probs: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each codebook's code distribution averaged over the N inputs: (G,).
    probs: (N, G, V) softmax of the code logits (no Gumbel noise). V = all codes used
    equally over the batch; 1 = one code takes all."""
    if probs.dim() != 3:
        raise ValueError(f"probs must be (N, groups, codes): {tuple(probs.shape)}")
    avg = probs.float().mean(0)
    return torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1))


def codebook_diversity(probs: torch.Tensor) -> torch.Tensor:
    """(G x V - sum of the G perplexities) / (G x V): 0 when every codebook spreads its inputs
    over all V codes, (V - 1) / V when each uses a single one."""
    groups, codes = probs.shape[1:]
    return (groups * codes - codebook_perplexity(probs).sum()) / (groups * codes)
