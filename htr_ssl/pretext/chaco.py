"""ChaCo (ICFHR 2022): contrastive learning on character-sized crops.

Instead of whole lines or windows of a line's frame sequence (SeqCLR), ChaCo contrasts
"character units": crops about one character wide. Each line of the two aligned views gives
`crops` crops of `width` pixels, drawn at random places inside the line's true width; crop k
of view 2 lies where crop k of view 1 lies, moved by at most `jitter` pixels. That small,
bounded move is this library's reading of the paper's Character Unit Cropping Module: the
positive is constrained to a region where it still shows the same character (random crops of
a word could hold different characters, which must not be pulled together). `2 * jitter <
width` keeps more than half of the two crops in common.

Every crop goes through the encoder *on its own* (as a tiny line of `width` pixels), its
frames are averaged into one vector, an MLP projects it, and NT-Xent makes each crop find its
counterpart in the other view among all crops of the (global) batch, other crops of the same
line included. Metric `acc`: % of crops of view 1 whose nearest crop of view 2 is their
positive; `chance` = 100 / crops in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import Metrics, Pretext, masked_mean, mlp, retrieval, two_views
from htr_ssl.pretext.gather import gather_with_grad
from htr_ssl.pretext.losses.ntxent import nt_xent


@dataclass
class ChaCoConfig:
    width: int = 32          # crop width in pixels: about one character at 64 px line height
    crops: int = 4           # crops per line and step (each a positive pair across the views)
    jitter: int = 4          # view 2's crop moves by at most this many pixels (below width / 2)
    hidden: int = 256        # projection MLP hidden width
    proj_dim: int = 128      # projection output size
    temperature: float = 0.1
    contextual: bool = True  # pool the BiLSTM frames (True) or the CNN frames of each crop

    def __post_init__(self) -> None:
        for key in ("width", "crops", "hidden"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.chaco.{key}={getattr(self, key)} must be >= 1")
        if self.proj_dim < 2:
            raise ValueError(f"pretext.chaco.proj_dim={self.proj_dim} must be >= 2")
        if self.jitter < 0 or 2 * self.jitter >= self.width:
            raise ValueError(f"pretext.chaco.jitter={self.jitter} must be >= 0 and below "
                             f"width / 2 ({self.width / 2:g}), so the two crops share most columns")
        if self.temperature <= 0:
            raise ValueError(f"pretext.chaco.temperature={self.temperature} must be > 0")


def crop_places(widths: torch.Tensor, width: int, jitter: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Start columns of the crops of view 1 and view 2, one per entry of `widths` (each the
    width of the line the crop is cut from). View 1's crop lies uniformly inside the line
    (lines narrower than `width` start at 0 and keep their white padding); view 2's is moved
    by a uniform integer in [-jitter, jitter], kept inside the line."""
    widths = widths.long()
    room = (widths - width).clamp(min=0)
    first = ops.uniform_starts(room)
    shift = torch.randint(-jitter, jitter + 1, (len(widths),), device=widths.device)
    second = (first + shift).clamp(min=0).minimum(room)
    return first, second


class ChaCo(Pretext):
    views = 2

    def __init__(self, cfg: ChaCoConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = mlp(encoder.dim(cfg.contextual), cfg.hidden, cfg.proj_dim)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        views = two_views(batch, "chaco")
        b = views.shape[1]
        line = torch.arange(b, device=views.device).repeat(cfg.crops)  # crop i is of line i % b
        widths = batch.widths.to(views.device).long()[line]
        first, second = crop_places(widths, cfg.width, cfg.jitter)
        crops = torch.cat([ops.crop_columns(views[0][line], first, cfg.width),
                           ops.crop_columns(views[1][line], second, cfg.width)])
        sizes = torch.full((len(crops),), cfg.width, device=views.device)
        # both views' crops in one pass: one BatchNorm batch, as SimCLR's global BN
        frames, lengths = encoder(crops, sizes, cfg.contextual)
        z = self.head(masked_mean(frames, lengths)).unflatten(0, (2, -1))
        z = gather_with_grad(z.transpose(0, 1)).transpose(0, 1)  # negatives from every rank
        return nt_xent(z[0], z[1], cfg.temperature), retrieval(z[0], z[1])
