"""VICReg and Barlow Twins on SeqCLR's instances (windows of aligned views by default).

No negatives: collapse is prevented by the loss itself (VICReg's variance/covariance terms,
Barlow's off-diagonal term). The frames, projection head and instance mapping are SeqCLR's
(instance.InstancePretext); only the loss differs. The head is an expander (wider than
SeqCLR's projection), as both papers use: decorrelation needs dimensions to spread over.
`acc` is the same top-1 retrieval of the positive among the batch's instances as SeqCLR's
(chance = 100 / instances), which neither loss optimizes directly but both should raise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, retrieval
from htr_ssl.pretext.instance import InstanceOptions, InstancePretext
from htr_ssl.pretext.losses.barlow import barlow_twins, cross_correlation
from htr_ssl.pretext.losses.vicreg import vicreg_terms


@dataclass
class VICRegConfig(InstanceOptions):
    hidden: int = 512
    proj_dim: int = 256
    sim_weight: float = 25.0
    var_weight: float = 25.0
    cov_weight: float = 1.0

    def __post_init__(self) -> None:
        self._check("vicreg")
        if min(self.sim_weight, self.var_weight, self.cov_weight) < 0:
            raise ValueError("pretext.vicreg.sim_weight, var_weight, cov_weight must be >= 0")


class VICReg(InstancePretext):
    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        z1, z2 = self.instances(encoder, batch)
        t = vicreg_terms(z1, z2)
        loss = t.total(self.cfg.sim_weight, self.cfg.var_weight, self.cfg.cov_weight)
        return loss, {**retrieval(z1, z2), "std": t.std, "inv": t.invariance.detach(),
                      "var": t.variance.detach(), "cov": t.covariance.detach()}


@dataclass
class BarlowConfig(InstanceOptions):
    hidden: int = 512
    proj_dim: int = 256
    lambd: float = 5e-3

    def __post_init__(self) -> None:
        self._check("barlow")
        if self.lambd < 0:
            raise ValueError(f"pretext.barlow.lambd={self.lambd} must be >= 0")


class Barlow(InstancePretext):
    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        z1, z2 = self.instances(encoder, batch)
        loss = barlow_twins(z1, z2, self.cfg.lambd)
        with torch.no_grad():
            corr = torch.diagonal(cross_correlation(z1, z2)).mean()
            std = 0.5 * (z1.float().std(0).mean() + z2.float().std(0).mean())
        return loss, {**retrieval(z1, z2), "corr": corr, "std": std}
