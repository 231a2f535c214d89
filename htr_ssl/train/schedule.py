"""Learning-rate schedules: linear warmup, then cosine decay, step decay or constant."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_lambda(schedule: str, warmup: int, total: int, min_ratio: float = 0.01,
              step_every: int = 1000, gamma: float = 0.1) -> Callable[[int], float]:
    """Multiplier of the base learning rate at optimizer step `s` (for LambdaLR)."""
    if schedule not in ("cosine", "step", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; use cosine, step or constant")

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        if schedule == "constant":
            return 1.0
        if schedule == "step":
            return gamma ** ((s - warmup) // max(step_every, 1))
        progress = min(1.0, (s - warmup) / max(total - warmup, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def delayed(factor: Callable[[int], float], start: int, warmup: int, scale: float = 1.0
            ) -> Callable[[int], float]:
    """`scale` x `factor`, but 0 before step `start` and ramping up linearly over `warmup`
    steps after it: a pretrained encoder held still while a fresh head learns to read it,
    then released gently (a sudden full learning rate would wreck what it learned)."""

    def delayed_factor(s: int) -> float:
        if s < start:
            return 0.0
        ramp = min(1.0, (s - start + 1) / warmup) if warmup > 0 else 1.0
        return scale * ramp * factor(s)

    return delayed_factor
