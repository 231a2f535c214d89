"""Geometric pretexts: predict which rotation or flip was applied to a line.

Each image gets one transform drawn at random; the encoder's frames are mean-pooled over the
line's true width and an MLP classifies the transform. The transforms respect each line's
width (see ops.py), so padding never tells the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import Metrics, Pretext, accuracy, chance, masked_mean, mlp

ROTATION_MODES = ("line", "square")


@dataclass
class RotationConfig:
    """`mode=line`: 0 or 180 degrees on whole lines (the default: the encoder sees full lines,
    as in fine-tuning). `mode=square`: 0/90/180/270 degrees on a random square crop of each
    line (RotNet's four classes; a line cannot be turned 90 degrees and stay a line)."""

    mode: str = "line"
    hidden: int = 256
    contextual: bool = True  # classify the BiLSTM frames (True) or the CNN frames

    def __post_init__(self) -> None:
        if self.mode not in ROTATION_MODES:
            raise ValueError(f"pretext.rotation.mode={self.mode!r}; use one of {ROTATION_MODES}")


class Rotation(Pretext):
    def __init__(self, cfg: RotationConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.classes = 2 if cfg.mode == "line" else 4
        self.head = mlp(encoder.dim(cfg.contextual), cfg.hidden, self.classes)

    def transform(self, images: torch.Tensor, widths: torch.Tensor, label: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply rotation `label` (line: 1 = 180 degrees; square: k quarter turns)."""
        if self.cfg.mode == "line":
            turned = ops.vflip(ops.hflip_within(images, widths))
            return ops.select(label == 1, turned, images), widths
        squares = ops.random_square_crops(images, widths)
        return ops.rot90(squares, label), torch.full_like(widths, squares.shape[-1])

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        label = torch.randint(self.classes, (len(batch.widths),), device=batch.images.device)
        images, widths = self.transform(batch.images, batch.widths, label)
        frames, lengths = encoder(images, widths, self.cfg.contextual)
        logits = self.head(masked_mean(frames, lengths))
        return F.cross_entropy(logits.float(), label), {
            "acc": accuracy(logits, label), "chance": chance(self.classes, logits)}


FLIPS = ("none", "horizontal", "vertical", "both")


@dataclass
class FlipConfig:
    hidden: int = 256
    contextual: bool = True


class Flip(Pretext):
    """Four classes: none / horizontal / vertical / both ("both" equals a 180-degree turn)."""

    def __init__(self, cfg: FlipConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = mlp(encoder.dim(cfg.contextual), cfg.hidden, len(FLIPS))

    @staticmethod
    def transform(images: torch.Tensor, widths: torch.Tensor, label: torch.Tensor
                  ) -> torch.Tensor:
        """Label bit 0 = horizontal mirror (inside the width), bit 1 = vertical."""
        images = ops.select(label % 2 == 1, ops.hflip_within(images, widths), images)
        return ops.select(label >= 2, ops.vflip(images), images)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        label = torch.randint(len(FLIPS), (len(batch.widths),), device=batch.images.device)
        frames, lengths = encoder(self.transform(batch.images, batch.widths, label),
                                  batch.widths, self.cfg.contextual)
        logits = self.head(masked_mean(frames, lengths))
        return F.cross_entropy(logits.float(), label), {
            "acc": accuracy(logits, label), "chance": chance(len(FLIPS), logits)}
