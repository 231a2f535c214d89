"""DINO (Caron et al. 2021): self-distillation without labels, on line instances.

A student (the encoder + a head) and a teacher (a momentum copy of both) map each view of a
line to a distribution over `out_dim` prototypes. The teacher sees the two global views only;
the student sees those and the local segments (multicrop.py), and must match the teacher's
distribution of every *other* view (cross entropy). No negatives: what prevents collapse is
the teacher's output being centered (a running mean of its logits subtracted, so no prototype
wins every line) and sharpened (a low temperature, so the output is not uniform), plus the
teacher being a slow average of the student.

Head: 3-layer MLP (GELU) -> `bottleneck` -> L2-normalized -> a linear layer whose rows are
L2-normalized (DINO's weight-normalized last layer with the norm fixed to 1) -> `out_dim`.

Under torchrun the views' outputs are gathered from every rank before the loss (every rank
computes the global loss, as seqclr does) and the center is the global batch mean.

Metrics: `acc` = % of lines whose student distribution for view 2 is closest (cosine) to the
teacher's distribution for view 1 of the same line, among the batch's lines, both directions
averaged (chance 100 / lines); `entropy` = mean entropy of the teacher's distributions in
nats (log(out_dim) = uniform collapse, 0 = one-hot); `momentum`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance
from htr_ssl.pretext.gather import gather_with_grad
from htr_ssl.pretext.losses.dino import dino_loss, teacher_probs
from htr_ssl.pretext.losses.ntxent import positive_top1
from htr_ssl.pretext.momentum import cosine_momentum, follow_online, frozen_copy
from htr_ssl.pretext.multicrop import MultiCropOptions, line_views, pooled


@dataclass
class DINOConfig(MultiCropOptions):
    hidden: int = 512              # head MLP width
    bottleneck: int = 128          # L2-normalized bottleneck before the prototypes
    out_dim: int = 1024            # prototypes (DINO: 65536 for ImageNet)
    student_temp: float = 0.1
    teacher_temp: float = 0.04     # sharpening
    center_momentum: float = 0.9
    momentum: float = 0.99         # teacher EMA rate at step 0 (DINO: 0.996 for long runs)
    momentum_steps: int = 0        # cosine-raise the rate to 1 over this many steps

    def __post_init__(self) -> None:
        self._check_crops("dino")
        for key in ("hidden", "bottleneck", "out_dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.dino.{key}={getattr(self, key)} must be >= 1")
        if min(self.student_temp, self.teacher_temp) <= 0:
            raise ValueError("pretext.dino.student_temp and teacher_temp must be > 0")
        for key in ("center_momentum", "momentum"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"pretext.dino.{key}={getattr(self, key)} must be in [0, 1]")
        if self.momentum_steps < 0:
            raise ValueError(f"pretext.dino.momentum_steps={self.momentum_steps} must be >= 0")


class DINOHead(nn.Module):
    def __init__(self, dim: int, hidden: int, bottleneck: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) * bottleneck ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).T.to(z.dtype)


class DINO(Pretext):
    views = 2

    def __init__(self, cfg: DINOConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = DINOHead(encoder.dim(cfg.contextual), cfg.hidden, cfg.bottleneck,
                             cfg.out_dim)
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(cfg.out_dim))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def momentum(self) -> float:
        return cosine_momentum(self.cfg.momentum, int(self.step), self.cfg.momentum_steps)

    def after_step(self, encoder: Encoder) -> None:
        """EMA step of the teacher (momentum.py)."""
        follow_online(self.step, [(self.teacher_encoder, encoder),
                                  (self.teacher_head, self.head)],
                      self.cfg.momentum, self.cfg.momentum_steps)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        views = line_views(batch, cfg, "dino")
        student = torch.stack([self.head(v) for v in pooled(encoder, views, cfg.contextual)])
        with torch.no_grad():
            teacher = torch.stack([self.teacher_head(v) for v in
                                   pooled(self.teacher_encoder, views[:2], cfg.contextual)])
        student = gather_with_grad(student.transpose(0, 1)).transpose(0, 1)
        teacher = gather_with_grad(teacher.transpose(0, 1)).transpose(0, 1)
        loss = dino_loss(student, teacher, self.center, cfg.student_temp, cfg.teacher_temp)
        with torch.no_grad():
            t = teacher_probs(teacher, self.center, cfg.teacher_temp)
            s = F.softmax(student[:2].float() / cfg.student_temp, dim=-1)
            acc = 0.5 * (positive_top1(s[1], t[0]) + positive_top1(s[0], t[1]))
            entropy = -(t * t.clamp(min=1e-12).log()).sum(-1).mean()
            if self.training:
                batch_center = teacher.float().mean(dim=(0, 1))
                self.center.mul_(cfg.center_momentum).add_(batch_center,
                                                           alpha=1 - cfg.center_momentum)
        return loss, {"acc": acc, "chance": chance(student.shape[1], acc), "entropy": entropy,
                      "momentum": torch.tensor(self.momentum(), device=acc.device)}
