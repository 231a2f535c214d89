"""Bootstrap pretexts without negatives: BYOL (Grill et al. 2020) and SimSiam (Chen & He 2021).

Two aligned views of each line go through the encoder, are pooled into instances (by default
SeqCLR's windows: each line's frames average-pooled into 5 pieces, so the representation must
keep where things are along the line, not only what the line contains; or one mean per line),
projected and (online branch only) passed through a predictor; the prediction of one view is pulled
towards the other view's projection, which is a stop-gradient target. What stops the trivial
constant solution is that asymmetry: the predictor plus the stop-gradient (both methods) and,
for BYOL, a target network that is a slow exponential moving average of the online one.

The two methods share everything but the target:
- `simsiam`: the target is the online projection of the other view, detached.
- `byol`: the target is a momentum copy of encoder + projector (momentum.py's rules, updated in
  `after_step`, never in `forward`). The encoder is not owned by a pretext (it is passed to
  `forward`), so the copy lives here, under `pretexts.byol.target_encoder.` in the checkpoint,
  next to the `step` buffer that drives the momentum schedule: resume continues the exact same
  EMA.

Metrics: `acc` = % of instances whose prediction is closest (cosine) to its own target among
the batch's targets (chance 100 / number of instances); `std` = mean per-dimension std of the
L2-normalized online projections, a collapse detector (about 1/sqrt(dim) when healthy, 0 when
every line maps to the same point).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance, mlp, two_views
from htr_ssl.pretext.instance import all_to_instance, window_to_instance
from htr_ssl.pretext.losses.byol import normalized_mse
from htr_ssl.pretext.losses.ntxent import positive_top1
from htr_ssl.pretext.momentum import cosine_momentum, follow_online, frozen_copy

INSTANCES = ("window", "line")


def to_instances(frames: torch.Tensor, lengths: torch.Tensor, kind: str, windows: int
                 ) -> torch.Tensor:
    """(B, T, C) frames -> instances with instance.py's mappings: `window` (each line's valid
    frames average-pooled into `windows` pieces, (B * windows, C)) or `line` (its `all`)."""
    if kind == "line":
        return all_to_instance(frames, lengths)
    return window_to_instance(frames, lengths, windows)


@dataclass
class SimSiamConfig:
    """Heads of SimSiam; `pred_hidden` is a bottleneck (dim / 4) as in the paper."""

    dim: int = 256          # projection (and prediction) size
    proj_hidden: int = 1024  # projector MLP hidden width
    pred_hidden: int = 64    # predictor MLP hidden width
    instances: str = "window"  # how frames become instances: window or line
    windows: int = 5         # instances per line with instances=window
    contextual: bool = True  # pool the BiLSTM frames (True) or the CNN frames

    def __post_init__(self) -> None:
        name = type(self).__name__.removesuffix("Config").lower()
        for key in ("dim", "proj_hidden", "pred_hidden", "windows"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.{name}.{key}={getattr(self, key)} must be >= 1")
        if self.instances not in INSTANCES:
            raise ValueError(f"pretext.{name}.instances={self.instances!r}; use one of "
                             f"{INSTANCES}")


@dataclass
class BYOLConfig(SimSiamConfig):
    """BYOL adds the momentum target. `momentum` is the EMA rate at step 0; with
    `momentum_steps` > 0 it rises to 1 along a cosine over that many steps (BYOL's schedule; set
    it to the run's max_steps), with 0 it stays constant."""

    pred_hidden: int = 1024
    momentum: float = 0.99
    momentum_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"pretext.byol.momentum={self.momentum} must be in [0, 1] "
                             "(typical: 0.99 to 0.996)")
        if self.momentum_steps < 0:
            raise ValueError(f"pretext.byol.momentum_steps={self.momentum_steps} must be >= 0 "
                             "(0 = constant momentum)")


class SimSiam(Pretext):
    views = 2

    def __init__(self, cfg: SimSiamConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.projector = mlp(encoder.dim(cfg.contextual), cfg.proj_hidden, cfg.dim)
        self.predictor = mlp(cfg.dim, cfg.pred_hidden, cfg.dim)

    def embed(self, encoder: Encoder, projector: torch.nn.Module, images: torch.Tensor,
              widths: torch.Tensor) -> torch.Tensor:
        """Images -> instances -> projections."""
        frames, lengths = encoder(images, widths, self.cfg.contextual)
        return projector(to_instances(frames, lengths, self.cfg.instances, self.cfg.windows))

    def targets(self, encoder: Encoder, images: torch.Tensor, widths: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        """SimSiam: the online projections themselves (the loss detaches them)."""
        return z

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        # One pass per view, as both papers do: with both views in one BatchNorm batch, the
        # heads can meet the loss by telling the views apart instead of the lines (a collapse
        # that per-batch feature variance does not show).
        p, t, std = [], [], []
        for view in two_views(batch, type(self).__name__.lower()):
            z = self.embed(encoder, self.projector, view, batch.widths)
            p.append(self.predictor(z))
            t.append(self.targets(encoder, view, batch.widths, z))
            std.append(F.normalize(z.detach().float(), dim=1).std(0).mean())
        loss = 0.5 * (normalized_mse(p[0], t[1]) + normalized_mse(p[1], t[0]))
        acc = 0.5 * (positive_top1(p[0], t[1]) + positive_top1(p[1], t[0]))
        chance_ = chance(len(p[0]), acc)
        return loss, {"acc": acc, "chance": chance_, "std": 0.5 * (std[0] + std[1])}


class BYOL(SimSiam):
    """SimSiam plus a momentum target network (encoder + projector)."""

    def __init__(self, cfg: BYOLConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)
        # target updates so far: drives the momentum schedule, restored on resume
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def momentum(self) -> float:
        """EMA rate of the latest update: cosine from cfg.momentum to 1 over momentum_steps, or
        constant."""
        return cosine_momentum(self.cfg.momentum, int(self.step), self.cfg.momentum_steps)

    def after_step(self, encoder: Encoder) -> None:
        follow_online(self.step, [(self.target_encoder, encoder),
                                  (self.target_projector, self.projector)],
                      self.cfg.momentum, self.cfg.momentum_steps)

    def targets(self, encoder: Encoder, images: torch.Tensor, widths: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.embed(self.target_encoder, self.target_projector, images, widths)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        loss, metrics = super().forward(encoder, batch)
        metrics["momentum"] = torch.tensor(self.momentum(), device=loss.device)
        return loss, metrics
