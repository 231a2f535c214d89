"""Context prediction (Doersch et al. 2015) in one dimension: where is strip B relative to A?

Two strips of `width` pixels are cut from the same line; B lies left or right of A, `d`
strip-steps away (d = 1..`distances`, a step being `width + gap` pixels, plus a random
`jitter`). The two strips go through the encoder *separately* (a siamese pair, Doersch's late
fusion), each is averaged into one vector, and an MLP on the pair classifies the 2 x distances
relative positions (chance 100 / (2 x distances)).

How it differs from the puzzles: jigsaw and sorting show the encoder the whole shuffled line,
so it can compare neighbouring strips' edges directly; here each strip is seen alone and the
relation must come from what each strip holds (what tends to come before what in writing:
margins and line starts, word shapes, the drift of the baseline), and the gap plus jitter keep
the strips from meeting, so matching stroke ends across a cut cannot give the answer
(Doersch's reason for gaps and jitter). With `gap: 0` and `jitter: 0` the adjacent class is
the only one whose strips touch, and stroke continuity becomes a cue.

Each line gives `pairs` pairs per step, each with its own class and place. Lines too short
for the drawn class (|offset| > line width - strip width) are left out of the loss and
reported in `short` (% of lines); the class is drawn before the line is looked at, so the
classes stay balanced over lines long enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import Metrics, Pretext, chance, masked_mean, mlp


@dataclass
class ContextConfig:
    width: int = 64         # strip width in pixels (about two or three letters at 64 px height)
    gap: int = 16           # white space between two adjacent strip positions, in pixels
    jitter: int = 8         # random extra shift of strip B, +-pixels
    distances: int = 2      # distance classes per side (2 x distances classes)
    pairs: int = 4          # strip pairs drawn per line and step (strips are small: cheap)
    hidden: int = 256       # MLP width
    contextual: bool = True  # pool the BiLSTM frames (True) or the CNN frames

    def __post_init__(self) -> None:
        for key in ("width", "distances", "pairs", "hidden"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.context.{key}={getattr(self, key)} must be >= 1")
        if self.gap < 0 or self.jitter < 0:
            raise ValueError("pretext.context.gap and jitter must be >= 0")
        if self.jitter * 2 >= self.width + self.gap:
            raise ValueError(f"pretext.context.jitter={self.jitter} must be below "
                             "(width + gap) / 2, or neighbouring classes overlap")


def relative_offsets(label: torch.Tensor, cfg: ContextConfig) -> torch.Tensor:
    """Pixel offset of B's start from A's start for each class: classes 0..D-1 are left at
    distance 1..D, classes D..2D-1 right at 1..D; plus uniform jitter in [-jitter, jitter]."""
    d = cfg.distances
    side = torch.where(label >= d, 1, -1)
    dist = label % d + 1
    jitter = torch.randint(-cfg.jitter, cfg.jitter + 1, label.shape, device=label.device)
    return side * dist * (cfg.width + cfg.gap) + jitter


def place_pair(widths: torch.Tensor, offsets: torch.Tensor, width: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(start of A, start of B, fits) with A drawn uniformly among the positions where both
    strips lie inside the line; `fits` is false where the line is too short."""
    lo = (-offsets).clamp(min=0)
    hi = (widths - width - offsets.clamp(min=0))
    fits = hi >= lo
    room = (hi - lo + 1).clamp(min=1)
    a = lo + (torch.rand(len(widths), device=widths.device) * room).long().clamp(max=room - 1)
    a = torch.where(fits, a, torch.zeros_like(a))
    return a, a + offsets, fits


class Context(Pretext):
    def __init__(self, cfg: ContextConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.classes = 2 * cfg.distances
        self.head = mlp(2 * encoder.dim(cfg.contextual), cfg.hidden, self.classes)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        images = batch.images.repeat(cfg.pairs, 1, 1, 1)
        widths = batch.widths.to(images.device).long().repeat(cfg.pairs)
        label = torch.randint(self.classes, (len(widths),), device=images.device)
        a, b, fits = place_pair(widths, relative_offsets(label, cfg), cfg.width)
        strips = torch.cat([ops.crop_columns(images, a, cfg.width),
                            ops.crop_columns(images, b.clamp(min=0), cfg.width)])
        sizes = torch.full((len(strips),), cfg.width, device=images.device)
        frames, lengths = encoder(strips, sizes, cfg.contextual)
        pooled = masked_mean(frames, lengths).unflatten(0, (2, -1))
        logits = self.head(torch.cat([pooled[0], pooled[1]], dim=1))
        ce = F.cross_entropy(logits.float(), label, reduction="none")
        keep = fits.float()
        hit = (logits.detach().argmax(-1) == label).float()
        n = keep.sum().clamp(min=1)
        return (ce * keep).sum() / n, {
            "acc": (hit * keep).sum() / n * 100, "chance": chance(self.classes, logits),
            "short": (1 - keep).mean().detach() * 100}
