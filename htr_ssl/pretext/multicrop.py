"""Multi-crop for line instances (SwAV, DINO): two global views plus local segments of them.

The global views are the loader's two aligned augmentations of each line. A local view is a
random horizontal segment (a share `local_scale` of the line's width) of one of them, as the
small crops of SwAV and DINO: the model must tell from a few words which line they belong to
(its writing, its layout), the local-to-global correspondence those papers credit for much of
their gain. Segments keep the height, so the encoder sees ordinary (short) lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import masked_mean, two_views


@dataclass
class MultiCropOptions:
    local_crops: int = 2           # local segments per line besides the 2 global views
    local_min: float = 0.3         # a local segment spans this share of the line's width ...
    local_max: float = 0.6         # ... up to this share
    contextual: bool = True        # pool BiLSTM frames (True) or CNN frames

    def _check_crops(self, name: str) -> None:
        if self.local_crops < 0:
            raise ValueError(f"pretext.{name}.local_crops={self.local_crops} must be >= 0")
        if not 0.0 < self.local_min <= self.local_max <= 1.0:
            raise ValueError(f"pretext.{name}: need 0 < local_min <= local_max <= 1, got "
                             f"{self.local_min}, {self.local_max}")


def line_views(batch: Batch, cfg: MultiCropOptions, name: str
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(images, widths)] for the 2 global views, then `local_crops` local ones (alternately
    cut from the first and the second global view)."""
    both = two_views(batch, name)
    widths = batch.widths.to(both.device)
    views = [(both[0], widths), (both[1], widths)]
    for i in range(cfg.local_crops):
        start, sizes = ops.random_segments(widths, cfg.local_min, cfg.local_max)
        views.append((ops.crop_lines(both[i % 2], start, sizes), sizes))
    return views


def pooled(encoder: Encoder, views: list[tuple[torch.Tensor, torch.Tensor]], contextual: bool
           ) -> list[torch.Tensor]:
    """One vector per line and view: each view in its own encoder pass (as the papers do:
    one BatchNorm batch per crop size, and no cue shared between the views of a line)."""
    out = []
    for images, widths in views:
        frames, lengths = encoder(images, widths, contextual)
        out.append(masked_mean(frames, lengths))
    return out
