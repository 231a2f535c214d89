"""Building blocks of the momentum-teacher pretexts (byol, moco, dino): an EMA copy and its
schedule.

The target is updated by the pretext's `after_step` (which the training loop calls after each
optimizer step), never by `forward`: a forward pass, in training or validation, changes no
weights. The target starts as a copy of the online modules the pretext is built with (so load
weights into the encoder before building the pretext, as `build_pretext_model` does), then
follows them as `target = m * target + (1 - m) * online`, parameters only (its BatchNorm
statistics are its own). The `step` buffer counts updates: it drives the schedule and is in
the checkpoint, so a resumed run continues the exact same EMA.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn


def cosine_momentum(base: float, step: int, total: int) -> float:
    """EMA rate at `step`: `base` rising to 1 along a half cosine over `total` steps (BYOL's,
    DINO's and MoCo v3's schedule); constant `base` when `total` is 0."""
    if total == 0:
        return base
    k = min(step, total)
    return 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy that takes no gradient (the target side of a momentum pair)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(pairs: Sequence[tuple[nn.Module, nn.Module]], m: float) -> None:
    """Move every (target, online) pair's target parameters a fraction 1 - m towards the
    online ones."""
    for target, online in pairs:
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(m).add_(o.detach(), alpha=1 - m)


def follow_online(step: torch.Tensor, pairs: Sequence[tuple[nn.Module, nn.Module]], base: float,
                  total: int) -> None:
    """One update of every (target, online) pair: `step` (the update count, a buffer) advances
    in place and the EMA runs at `cosine_momentum(base, step, total)`."""
    step += 1
    ema_update_(pairs, cosine_momentum(base, int(step), total))
