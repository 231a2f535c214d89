"""What every pretext is: a module that turns an image batch into a loss, using a shared encoder.

A pretext owns its heads (and, for BYOL, its target network) but never the encoder: the encoder
is passed to `forward`, so its weights exist once, under `encoder.` in the checkpoint, whatever
pretexts trained it. That is what lets `htr-ssl-train finetune.init_from=` load any of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.losses.ntxent import positive_top1

Metrics = dict[str, torch.Tensor]


class Pretext(nn.Module):
    """Base class: subclasses set `views` and implement `forward`.

    `views` is how many aligned, differently augmented copies of each image the data loader
    must provide (contrastive methods need 2; transform-prediction methods make their own
    inputs from one).
    """

    views: int = 1

    def __init__(self, cfg: Any, encoder: Encoder) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """Build inputs and targets from `batch`, run `encoder`, return (loss, metrics).

        Metrics are detached scalars (e.g. accuracy of the pretext's own prediction).
        """
        raise NotImplementedError

    def after_step(self, encoder: Encoder) -> None:
        """Called by the training loop after each optimizer step: where momentum targets
        follow the online weights (momentum.py), so that `forward` changes no weights. Does
        nothing by default."""


def masked_mean(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over each sample's valid frames: (B, T, C) -> (B, C)."""
    t = torch.arange(frames.shape[1], device=frames.device)
    mask = (t[None, :] < lengths[:, None]).to(frames.dtype)
    return (frames * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


def mlp(dim_in: int, hidden: int, dim_out: int, norm: bool = True) -> nn.Sequential:
    """Linear -> (BatchNorm) -> ReLU -> Linear: the head shape SimCLR, BYOL and RotNet use."""
    layers: list[nn.Module] = [nn.Linear(dim_in, hidden)]
    if norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, dim_out)]
    return nn.Sequential(*layers)


def chance(candidates: int, like: torch.Tensor) -> torch.Tensor:
    """The accuracy (%) of guessing among `candidates` equally likely answers: the `chance`
    metric every pretext reports next to its `acc`, so a figure is read against it."""
    return torch.tensor(100.0 / max(candidates, 1), device=like.device)


def two_views(batch: Batch, name: str) -> torch.Tensor:
    """The batch's first two aligned views (2, B, 1, H, W), or an error naming the pretext
    `name`: the data loader makes them for pretexts whose `views` is 2."""
    if batch.views is None or batch.views.shape[0] < 2:
        raise ValueError(f"{name} needs two aligned views per image "
                         "(batch.views); pretraining provides them for pretexts with views=2")
    return batch.views[:2]


def retrieval(z1: torch.Tensor, z2: torch.Tensor) -> Metrics:
    """`acc`: % of rows of z1 whose nearest row of z2 (cosine) is their own positive, and the
    `chance` of that (100 / rows): what every two-view pretext reports."""
    return {"acc": positive_top1(z1, z2), "chance": chance(len(z1), z1)}


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in %, detached."""
    return (logits.detach().argmax(-1) == target).float().mean() * 100
