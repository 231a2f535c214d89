"""SwAV (Caron et al. 2020): Sinkhorn-Knopp codes and the swapped prediction loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft assignments (N, K) of N samples to K prototypes, rows summing to 1, with every
    prototype given an equal share of the samples (equipartition: what keeps all lines from
    landing in one cluster). scores: (N, K) cosine similarities; epsilon: entropy weight.
    SwAV's iterations on exp(scores / epsilon), in fp32."""
    q = torch.exp((scores.float() - scores.float().max()) / epsilon).T  # (K, N)
    q /= q.sum()
    k, n = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= n
    return (q * n).T


def swapped_prediction(scores: torch.Tensor, codes: torch.Tensor, temperature: float = 0.1
                       ) -> torch.Tensor:
    """Mean over pairs i != j of the cross entropy between codes of view i and the softmax of
    view j's scores / temperature. scores: (V, N, K); codes: (Vc <= V, N, K), computed from the
    first Vc views (the global ones)."""
    if scores.dim() != 3 or codes.dim() != 3 or scores.shape[1:] != codes.shape[1:] \
            or codes.shape[0] > scores.shape[0]:
        raise ValueError(f"swav needs scores (V, N, K) and codes (Vc <= V, N, K): "
                         f"{scores.shape}, {codes.shape}")
    logp = F.log_softmax(scores.float() / temperature, dim=-1)
    terms = [-(codes[i].detach() * logp[j]).sum(-1).mean() for i in range(len(codes))
             for j in range(len(scores)) if i != j]
    if not terms:
        raise ValueError("swav needs at least two views")
    return torch.stack(terms).mean()
