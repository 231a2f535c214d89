"""SimCLR (Chen et al. 2020) on whole lines: one instance per line, pooled then projected.

Unlike SeqCLR's all-to-instance (project every frame, then average), the projection MLP acts
on the pooled line vector, as in SimCLR. Negatives are the other lines of the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, masked_mean, mlp, retrieval, two_views
from htr_ssl.pretext.gather import gather_with_grad
from htr_ssl.pretext.losses.ntxent import nt_xent


@dataclass
class SimCLRConfig:
    hidden: int = 512
    proj_dim: int = 128
    temperature: float = 0.1
    contextual: bool = True

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"pretext.simclr.temperature={self.temperature} must be > 0")
        if min(self.hidden, self.proj_dim) < 1:
            raise ValueError("pretext.simclr.hidden and proj_dim must be >= 1")


class SimCLR(Pretext):
    views = 2

    def __init__(self, cfg: SimCLRConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = mlp(encoder.dim(cfg.contextual), cfg.hidden, cfg.proj_dim)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        views = two_views(self, batch)
        b = views.shape[1]
        frames, lengths = encoder(views.flatten(0, 1), batch.widths.repeat(2),
                                  self.cfg.contextual)
        z = self.head(masked_mean(frames, lengths)).unflatten(0, (2, b))
        z = gather_with_grad(z.transpose(0, 1)).transpose(0, 1)
        loss = nt_xent(z[0], z[1], self.cfg.temperature)
        return loss, retrieval(z[0], z[1])
