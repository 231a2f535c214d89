"""Building blocks of the momentum-teacher pretexts (moco, dino): an EMA copy and its schedule.

BYOL (bootstrap.py) keeps its own copy of this logic; these are the same rules, shared by the
methods added later: the copy starts equal to the online modules at the first training step
(so weights loaded into the encoder after the pretext was built are copied too), then follows
them as `target = m * target + (1 - m) * online`, parameters only (its BatchNorm statistics
are its own).
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
def ema_update_(pairs: Sequence[tuple[nn.Module, nn.Module]], m: float, first: bool) -> None:
    """For every (target, online) pair: copy the whole state on the `first` step, else move
    the target's parameters a fraction 1 - m towards the online ones."""
    for target, online in pairs:
        if first:
            target.load_state_dict(online.state_dict())
            continue
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(m).add_(o.detach(), alpha=1 - m)
