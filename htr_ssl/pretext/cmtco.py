"""CMT-Co (ACCV 2022): contrastive learning with a character movement task.

Two losses on one encoder:

- contrast: SeqCLR's instances of two aligned views (instance.py: projection head, then the
  `all` / `frame` / `window` mapping) and NT-Xent, as `seqclr`. The paper contrasts whole
  word images; on text lines the default `window` mapping gives word-sized instances.
- character movement: a strip of `strip` pixels (about one character) of each line is moved
  along the line by `offset` = k x `step` pixels, k in -distances..distances, and the writing
  it passes over shifts the other way to fill the hole (the columns of the span are rotated,
  nothing is lost or painted white). A head on the encoder's frames of that stretch of line
  classifies k: 2 x distances + 1 classes, k = 0 (nothing moved) included.

The head sees a window of the line that does not depend on the class: `distances` steps
either side of the strip's original place, pooled into 2 x distances + 1 pieces (one per strip
slot when `step` = `strip`), so neither where it looks nor how wide tells the answer. Lines
too short for that window (strip + 2 x distances x step pixels) are left out of the movement
loss and counted in `short` (%). Metrics: `acc` / `chance` (the contrastive retrieval, as
seqclr), `move_acc` / `move_chance`, `short`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import Metrics, chance, mlp, retrieval
from htr_ssl.pretext.instance import InstanceOptions, InstancePretext
from htr_ssl.pretext.losses.ntxent import nt_xent


@dataclass
class CMTCoConfig(InstanceOptions):
    temperature: float = 0.1
    strip: int = 32            # width of the moved strip in pixels (about one character)
    step: int = 32             # pixels per movement class (one strip: the strip swaps places)
    distances: int = 2         # moves of 1..distances steps left or right, or none
    move_weight: float = 1.0   # weight of the movement loss next to the contrastive one

    def __post_init__(self) -> None:
        self._check("cmtco")
        if self.temperature <= 0:
            raise ValueError(f"pretext.cmtco.temperature={self.temperature} must be > 0")
        for key in ("strip", "step", "distances"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.cmtco.{key}={getattr(self, key)} must be >= 1")
        if self.move_weight < 0:
            raise ValueError(f"pretext.cmtco.move_weight={self.move_weight} must be >= 0")


def move_strip(images: torch.Tensor, start: torch.Tensor, width: int, offset: torch.Tensor
               ) -> torch.Tensor:
    """Move columns [start, start + width) of each line by offset[i] columns; the columns it
    passes over shift by `width` the other way into the place it left. Only the span covering
    both places changes, and it is a permutation of its own columns. The caller keeps every
    span inside the image."""
    cols = torch.arange(images.shape[-1], device=images.device)[None, :]
    s = start.to(images.device).long()[:, None]
    o = offset.to(images.device).long()[:, None]
    new = s + o
    strip = (cols >= new) & (cols < new + width)
    right = (o > 0) & (cols >= s) & (cols < new)            # moved right: these came from its right
    left = (o < 0) & (cols >= new + width) & (cols < s + width)  # moved left: from its left
    src = torch.where(strip, cols - o,
                      torch.where(right, cols + width, torch.where(left, cols - width, cols)))
    return images.gather(-1, src[:, None, None, :].expand_as(images))


def movement_window(widths: torch.Tensor, cfg: CMTCoConfig
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(strip start, fits) per line: the strip is drawn so that `distances` steps either side
    of it lie inside the line; `fits` is false (and start 0) where the line is too short."""
    reach = cfg.distances * cfg.step
    widths = widths.long()
    room = widths - cfg.strip - 2 * reach
    fits = room >= 0
    room = room.clamp(min=0)
    start = reach + ops.uniform_starts(room)
    return torch.where(fits, start, torch.zeros_like(start)), fits


def window_pieces(frames: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, pieces: int,
                  wstride: int) -> torch.Tensor:
    """Mean frames of `pieces` equal parts of pixel columns [lo, hi) of each line:
    (B, T, C) -> (B, pieces * C)."""
    k = torch.arange(pieces + 1, device=frames.device)[None, :]
    px = lo[:, None] + torch.div(k * (hi - lo)[:, None], pieces, rounding_mode="floor")
    bounds = torch.div(px + wstride // 2, wstride, rounding_mode="floor")  # nearest frame edge
    return ops.strip_means(frames, bounds).flatten(1)


class CMTCo(InstancePretext):
    def __init__(self, cfg: CMTCoConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.classes = 2 * cfg.distances + 1
        self.move_head = mlp(self.classes * encoder.dim(cfg.contextual), cfg.hidden,
                             self.classes)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        z1, z2 = self.instances(encoder, batch)
        contrast = nt_xent(z1, z2, cfg.temperature)

        images = batch.images
        widths = batch.widths.to(images.device).long()
        label = torch.randint(self.classes, (len(widths),), device=images.device)
        start, fits = movement_window(widths, cfg)
        offset = (label - cfg.distances) * cfg.step * fits.long()
        moved = move_strip(images, start, cfg.strip, offset)
        frames, _ = encoder(moved, widths, cfg.contextual)
        reach = cfg.distances * cfg.step
        feats = window_pieces(frames, start - reach, start + cfg.strip + reach, self.classes,
                              encoder.wstride)
        logits = self.move_head(feats)
        ce = F.cross_entropy(logits.float(), label, reduction="none")
        keep = fits.float()
        n = keep.sum().clamp(min=1)
        hit = (logits.detach().argmax(-1) == label).float()
        metrics = retrieval(z1, z2) | {
            "move_acc": (hit * keep).sum() / n * 100,
            "move_chance": chance(self.classes, logits),
            "short": (1 - keep).mean().detach() * 100}
        return contrast + cfg.move_weight * (ce * keep).sum() / n, metrics
