"""SwAV (Caron et al. 2020): online clustering of line instances with swapped prediction.

Each view of a line is embedded (encoder -> line mean -> MLP -> L2-normalized) and scored
against `prototypes` learnable, L2-normalized cluster centres. For each global view, the
Sinkhorn-Knopp algorithm turns the batch's scores into soft codes that use every prototype
equally (the equipartition constraint is what prevents the collapse of all lines into one
cluster, with no negatives); every other view (global or local, multicrop.py) must then
predict those codes from its own scores: view 1 predicts the code of view 2 and vice versa.

Small batches: as SwAV does below 256 images, the embeddings of the last `queue` global views
can be kept (queue.py) and join the Sinkhorn problem (their codes are computed and dropped,
only the batch's are used); as in SwAV, the queue fills only after `queue_start` steps and
joins once full. Off by default: on 16-line batches it made the embeddings worse, not better
(docs/pretexts.md). Under torchrun the embeddings are gathered from every rank first, so
Sinkhorn sees the global batch and every rank computes the same global loss and pushes the
same rows.

Assumed, not taken over: SwAV freezes the prototypes during the first epoch; here they learn
from the first step (`freeze_prototypes` steps is an option, default 0).

Metrics: `acc` = % of lines whose embedding of view 2 is nearest (cosine) to its own view 1
among the batch's lines, both directions averaged (chance 100 / lines); `clusters` = number of
prototypes that are some line's hard assignment in this batch (1 = collapse).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance, mlp
from htr_ssl.pretext.gather import gather_with_grad
from htr_ssl.pretext.losses.ntxent import positive_top1
from htr_ssl.pretext.losses.swav import sinkhorn, swapped_prediction
from htr_ssl.pretext.multicrop import MultiCropOptions, line_views, pooled
from htr_ssl.pretext.queue import FeatureQueue


@dataclass
class SwAVConfig(MultiCropOptions):
    hidden: int = 512               # projection MLP width
    dim: int = 128                  # embedding size
    prototypes: int = 64            # clusters (SwAV: 3000 for ImageNet; a few per batch here)
    temperature: float = 0.1        # softmax temperature of the predictions
    epsilon: float = 0.05           # Sinkhorn entropy weight (lower = harder codes)
    sinkhorn_iterations: int = 3
    queue: int = 0                  # past global-view embeddings joining Sinkhorn (0 = none)
    queue_start: int = 500          # steps before the queue fills (SwAV: epoch 15 of 800)
    freeze_prototypes: int = 0      # steps before the prototypes start learning

    def __post_init__(self) -> None:
        self._check_crops("swav")
        for key in ("hidden", "dim", "prototypes", "sinkhorn_iterations"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.swav.{key}={getattr(self, key)} must be >= 1")
        if min(self.temperature, self.epsilon) <= 0:
            raise ValueError("pretext.swav.temperature and epsilon must be > 0")
        if min(self.queue, self.queue_start, self.freeze_prototypes) < 0:
            raise ValueError("pretext.swav.queue, queue_start and freeze_prototypes must be "
                             ">= 0")


class SwAV(Pretext):
    views = 2

    def __init__(self, cfg: SwAVConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = mlp(encoder.dim(cfg.contextual), cfg.hidden, cfg.dim)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(cfg.prototypes, cfg.dim), dim=1))
        self.queue = FeatureQueue(cfg.queue, cfg.dim)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def after_step(self, encoder: Encoder) -> None:
        """SwAV keeps the prototypes on the unit sphere; `step` counts optimizer steps."""
        self.prototypes.copy_(F.normalize(self.prototypes, dim=1))
        self.step += 1

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        protos = self.prototypes
        if int(self.step) < cfg.freeze_prototypes:
            protos = protos.detach()
        views = line_views(batch, cfg, "swav")
        z = torch.stack([F.normalize(self.head(v), dim=-1)
                         for v in pooled(encoder, views, cfg.contextual)])
        z = gather_with_grad(z.transpose(0, 1)).transpose(0, 1)  # (V, N, dim), global batch
        scores = z @ protos.T.to(z.dtype)
        # stale rows of a fast-changing encoder would decide the codes: used only once full
        full = self.queue.size > 0 and int(self.queue.count) == self.queue.size
        queued = self.queue.get().to(z.dtype) if full else z.new_zeros(0, z.shape[-1])
        with torch.no_grad():
            old = queued @ protos.T.to(z.dtype) if len(queued) else scores.new_zeros(0, 0)
            codes = torch.stack([
                sinkhorn(torch.cat([old, s]) if len(old) else s, cfg.epsilon,
                         cfg.sinkhorn_iterations)[len(old):] for s in scores[:2].detach()])
        loss = swapped_prediction(scores, codes, cfg.temperature)
        if self.training and int(self.step) >= cfg.queue_start:
            self.queue.push(z[:2].detach().flatten(0, 1))
        with torch.no_grad():
            acc = 0.5 * (positive_top1(z[1], z[0]) + positive_top1(z[0], z[1]))
            clusters = torch.tensor(float(codes[0].argmax(-1).unique().numel()),
                                    device=acc.device)
        return loss, {"acc": acc, "chance": chance(z.shape[1], acc), "clusters": clusters}
