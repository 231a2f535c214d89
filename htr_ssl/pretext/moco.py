"""MoCo (He et al. 2020; v2 recipe, Chen et al. 2020) on SimCLR's or SeqCLR's instances.

Why: on a 2-core CPU a contrastive batch holds 16 lines, so SeqCLR's NT-Xent contrasts each
instance with a few dozen others. MoCo keeps the keys of past steps in a FIFO queue (thousands
of them) and contrasts against those as well; the keys come from a momentum (EMA) copy of
encoder + head, so keys computed a few hundred steps apart still live in nearly the same space.

One pretext for both instance families, chosen by `mapping`:
- `line`: SimCLR's instance (a line's valid frames averaged, then the MLP head);
- `all` / `frame` / `window`: SeqCLR's instance mappings (head on every frame, then mapped;
  `window` with 5 windows is SeqCLR's default).
So "SeqCLR with a queue" is `pretext=moco` (mapping window) and "SimCLR with a queue" is
`pretext=moco pretext.moco.mapping=line`.

Each view is a query for the other view's key (symmetric loss, MoCo v3); the candidates of a
query are all keys of the global batch (in-batch negatives, as MoCo v3) and the queue. Keys
of the second view are pushed to the queue after the loss, training steps only. Under torchrun
queries and keys are gathered from every rank (gather.py): the loss is the global one and
every rank pushes the same global keys, so the queues stay identical.

No shuffling BN: the key encoder normalizes with its own batch statistics, which lets a query
tell the current step's keys from the queue's older ones; the in-batch keys (the hardest, same
statistics) remain, as in MoCo v3, which dropped shuffle BN for that reason.

Metrics: `acc` = % of queries whose nearest candidate (keys and queue) is their own key;
`chance` = 100 / candidates; `batch_acc` = the same among the batch's keys only (chance 100 /
keys): at validation the queue holds keys normalized with training-mode batch statistics while
the queries and keys use the running ones, so `acc` may find the queue easier to reject than a
training step does, and `batch_acc` is the figure that shift cannot touch; `queue` = filled
rows; `momentum` = EMA rate used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance, masked_mean, mlp, two_views
from htr_ssl.pretext.gather import gather_with_grad
from htr_ssl.pretext.instance import MAPPINGS, InstanceOptions, ProjectionHead, map_instances
from htr_ssl.pretext.losses.moco import logits_infonce, logits_top1, moco_logits
from htr_ssl.pretext.momentum import cosine_momentum, follow_online, frozen_copy
from htr_ssl.pretext.queue import FeatureQueue

MOCO_MAPPINGS = ("line", *MAPPINGS)


@dataclass
class MoCoConfig(InstanceOptions):
    queue: int = 4096           # negatives kept from past steps (0 = in-batch keys only)
    momentum: float = 0.99      # EMA rate of the key encoder at step 0
    momentum_steps: int = 0     # cosine-raise the rate to 1 over this many steps; 0 = constant
    temperature: float = 0.2    # MoCo v2's

    def __post_init__(self) -> None:
        self._check("moco", MOCO_MAPPINGS)
        if self.queue < 0:
            raise ValueError(f"pretext.moco.queue={self.queue} must be >= 0")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"pretext.moco.momentum={self.momentum} must be in [0, 1]")
        if self.momentum_steps < 0:
            raise ValueError(f"pretext.moco.momentum_steps={self.momentum_steps} must be >= 0")
        if self.temperature <= 0:
            raise ValueError(f"pretext.moco.temperature={self.temperature} must be > 0")


class MoCo(Pretext):
    views = 2

    def __init__(self, cfg: MoCoConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        dim = encoder.dim(cfg.contextual)
        if cfg.mapping == "line":
            self.head: torch.nn.Module = mlp(dim, cfg.hidden, cfg.proj_dim)
            out = cfg.proj_dim
        else:
            self.head = ProjectionHead(cfg.head, dim, cfg.hidden, cfg.proj_dim)
            out = self.head.out_dim
        self.target_encoder = frozen_copy(encoder)
        self.target_head = frozen_copy(self.head)
        self.queue = FeatureQueue(cfg.queue, out)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def momentum(self) -> float:
        return cosine_momentum(self.cfg.momentum, int(self.step), self.cfg.momentum_steps)

    def after_step(self, encoder: Encoder) -> None:
        """EMA step of the key encoder and head (momentum.py)."""
        follow_online(self.step, [(self.target_encoder, encoder), (self.target_head, self.head)],
                      self.cfg.momentum, self.cfg.momentum_steps)

    def embed(self, encoder: Encoder, head: torch.nn.Module, images: torch.Tensor,
              widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views (2B images) -> (line vectors (2, B, D), None) for `line`, else
        (projected frames (2, B, T, D), lengths (B,)) for the instance mapping."""
        frames, lengths = encoder(images, widths, self.cfg.contextual)
        if self.cfg.mapping == "line":
            return head(masked_mean(frames, lengths)).unflatten(0, (2, -1)), lengths
        return head(frames, lengths).unflatten(0, (2, -1)), lengths

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        views = two_views(batch, "moco")
        images, widths = views.flatten(0, 1), batch.widths.repeat(2)
        q, lengths = self.embed(encoder, self.head, images, widths)
        with torch.no_grad():
            k, _ = self.embed(self.target_encoder, self.target_head, images, widths)
        if self.cfg.mapping != "line":  # one mapping call, so `frame` draws one index for all
            b = q.shape[1]
            z = map_instances(torch.cat([q, k]), lengths[:b], self.cfg.mapping,
                              self.cfg.windows, self.cfg.max_frames)
            q, k = z[:2], z[2:].detach()
        q = gather_with_grad(q.transpose(0, 1)).transpose(0, 1)  # queries of every rank
        k = gather_with_grad(k.transpose(0, 1)).transpose(0, 1)
        queue = self.queue.get()
        t = self.cfg.temperature
        n = q.shape[1]  # instances per view: the keys in each row's first n columns
        logits = (moco_logits(q[0], k[1], queue, t), moco_logits(q[1], k[0], queue, t))
        loss = 0.5 * sum(logits_infonce(x) for x in logits)
        acc = 0.5 * sum(logits_top1(x) for x in logits)
        batch_acc = 0.5 * sum(logits_top1(x[:, :n]) for x in logits)
        if self.training:
            self.queue.push(F.normalize(k[1].float(), dim=1))
        return loss, {"acc": acc, "chance": chance(n + len(queue), acc),
                      "batch_acc": batch_acc,
                      "queue": torch.tensor(float(len(queue)), device=acc.device),
                      "momentum": torch.tensor(self.momentum(), device=acc.device)}
