"""Line instances for the instance-level pretexts (SeqCLR, VICReg, Barlow Twins): two aligned
views -> encoder -> projection head -> instance mapping -> (global) batch of instance pairs.

Both views of a line are horizontally aligned (see the `seqclr` augmentation recipe), so frame
t of one view shows the same stretch of writing as frame t of the other. The frames go through
a projection head, then an *instance mapping* cuts each line into instances:

- ``all``:    one instance per line, the mean of its valid frames (SimCLR on sequences);
- ``frame``:  every valid frame is an instance (a random `max_frames` of them per step, which
              keeps the similarity matrix small);
- ``window``: each line's valid frames are average-pooled into `windows` windows (adaptive
              pooling over the line's own length, never over its padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.bilstm import BiLSTM
from htr_ssl.models.encoders import Encoder
from htr_ssl.models.ops import valid_mask
from htr_ssl.pretext.base import Pretext, masked_mean, mlp, two_views
from htr_ssl.pretext.gather import gather_with_grad

MAPPINGS = ("all", "frame", "window")
HEADS = ("none", "mlp", "bilstm")


# Instance mappings: pure functions on padded (B, T, C) frames and their lengths.


def all_to_instance(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """One instance per line: the mean of its valid frames, (B, C)."""
    return masked_mean(frames, lengths)


def sample_frames(lengths: torch.Tensor, t: int, max_frames: int) -> torch.Tensor:
    """Flat indices (into B * T) of the valid frames, at most `max_frames` of them drawn at
    random (the same draw must serve both views, so it is separate from the mapping)."""
    index = valid_mask(lengths, t).flatten().nonzero().squeeze(1)
    if len(index) > max_frames:
        pick = torch.randperm(len(index), device=index.device)[:max_frames]
        index = index[pick.sort().values]
    return index


def frame_to_instance(frames: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The frames at flat `index` (from `sample_frames`): (N, C)."""
    return frames.flatten(0, 1)[index]


def window_weights(lengths: torch.Tensor, t: int, windows: int) -> torch.Tensor:
    """(B, K, T) averaging weights: window k of a line of L frames spans frames
    [floor(k L / K), ceil((k + 1) L / K)), as adaptive average pooling of the valid frames.
    Lines shorter than K frames get overlapping windows; padding always gets weight 0."""
    k = torch.arange(windows, device=lengths.device)[None, :]
    n = lengths[:, None].clamp(min=1)
    start = torch.div(k * n, windows, rounding_mode="floor")
    end = -torch.div(-(k + 1) * n, windows, rounding_mode="floor")
    tt = torch.arange(t, device=lengths.device)[None, None, :]
    inside = (tt >= start[..., None]) & (tt < end[..., None])
    return inside.float() / inside.sum(-1, keepdim=True).float()


def window_to_instance(frames: torch.Tensor, lengths: torch.Tensor, windows: int
                       ) -> torch.Tensor:
    """`windows` instances per line, line-major: (B * K, C)."""
    w = window_weights(lengths, frames.shape[1], windows).to(frames.dtype)
    return torch.bmm(w, frames).flatten(0, 1)


def map_instances(frames: torch.Tensor, lengths: torch.Tensor, mapping: str, windows: int = 5,
                  max_frames: int = 512) -> torch.Tensor:
    """Views' frames (V, B, T, C), sharing `lengths` (B,) -> instances (V, N, C), row i of every
    view being the same piece of the same line (the positives)."""
    t = frames.shape[2]
    if mapping == "all":
        return torch.stack([all_to_instance(f, lengths) for f in frames])
    if mapping == "frame":
        index = sample_frames(lengths, t, max_frames)
        return torch.stack([frame_to_instance(f, index) for f in frames])
    if mapping == "window":
        return torch.stack([window_to_instance(f, lengths, windows) for f in frames])
    raise ValueError(f"unknown instance mapping {mapping!r}; use one of {MAPPINGS}")


class ProjectionHead(nn.Module):
    """Per-frame projection before the instance mapping: none, an MLP on each valid frame,
    or a one-layer BiLSTM over each line (frames get context from their neighbours)."""

    def __init__(self, kind: str, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.kind = kind
        self.net: nn.Module | None = None
        self.out_dim = dim_in
        if kind == "mlp":
            self.net, self.out_dim = mlp(dim_in, hidden, dim_out), dim_out
        elif kind == "bilstm":
            self.net, self.out_dim = BiLSTM(dim_in, dim_out // 2, 1), 2 * (dim_out // 2)
        elif kind != "none":
            raise ValueError(f"unknown projection head {kind!r}; use one of {HEADS}")

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, C_in) -> (B, T, out_dim), zero beyond each length."""
        if self.net is None:
            return frames
        if self.kind == "bilstm":
            return self.net(frames, lengths)
        # only valid frames go through the MLP, so padding never enters its BatchNorm statistics
        mask = valid_mask(lengths, frames.shape[1])
        projected = self.net(frames[mask])
        out = frames.new_zeros(*frames.shape[:2], self.out_dim, dtype=projected.dtype)
        out[mask] = projected
        return out


@dataclass
class InstanceOptions:
    """How frames become instances; shared by seqclr, vicreg and barlow."""

    mapping: str = "window"
    windows: int = 5
    max_frames: int = 512
    head: str = "mlp"
    hidden: int = 256
    proj_dim: int = 128
    contextual: bool = True

    def _check(self, name: str) -> None:
        if self.mapping not in MAPPINGS:
            raise ValueError(f"pretext.{name}.mapping={self.mapping!r}; use one of {MAPPINGS}")
        if self.head not in HEADS:
            raise ValueError(f"pretext.{name}.head={self.head!r}; use one of {HEADS}")
        for key in ("windows", "max_frames", "hidden"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.{name}.{key}={getattr(self, key)} must be >= 1")
        if self.proj_dim < 2:
            raise ValueError(f"pretext.{name}.proj_dim={self.proj_dim} must be >= 2")


class InstancePretext(Pretext):
    """Two aligned views -> encoder -> projection head -> instance mapping -> global batch.

    Subclasses score the (N, D) instance pairs that `instances` returns."""

    views = 2

    def __init__(self, cfg: InstanceOptions, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = ProjectionHead(cfg.head, encoder.dim(cfg.contextual), cfg.hidden,
                                   cfg.proj_dim)

    def instances(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        views = two_views(self, batch)
        b = views.shape[1]
        # both views in one pass: one BatchNorm batch, as SimCLR's global BN
        frames, lengths = encoder(views.flatten(0, 1), batch.widths.repeat(2),
                                  self.cfg.contextual)
        frames = self.head(frames, lengths)
        z = map_instances(frames.unflatten(0, (2, b)), lengths[:b], self.cfg.mapping,
                          self.cfg.windows, self.cfg.max_frames)
        z = gather_with_grad(z.transpose(0, 1)).transpose(0, 1)  # negatives from every rank
        return z[0], z[1]
