"""SeqCLR (Aberdam et al. 2021): contrast pieces of a line's frame sequence across two views.

The line instances (one per line, per frame or per window of aligned views) come from
instance.py. NT-Xent then makes each instance find its counterpart in the other view among all
instances of the (global) batch, other windows of the same line included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, retrieval
from htr_ssl.pretext.instance import InstanceOptions, InstancePretext
from htr_ssl.pretext.losses.ntxent import nt_xent


@dataclass
class SeqCLRConfig(InstanceOptions):
    temperature: float = 0.1

    def __post_init__(self) -> None:
        self._check("seqclr")
        if self.temperature <= 0:
            raise ValueError(f"pretext.seqclr.temperature={self.temperature} must be > 0")


class SeqCLR(InstancePretext):
    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        z1, z2 = self.instances(encoder, batch)
        loss = nt_xent(z1, z2, self.cfg.temperature)
        return loss, retrieval(z1, z2)
