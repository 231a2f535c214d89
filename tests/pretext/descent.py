"""The check every pure loss gets: a few Adam steps on its inputs lower it, steadily."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch


def assert_descends(loss_of: Callable[[], torch.Tensor], params: list[torch.Tensor],
                    lr: float, steps: int = 20) -> None:
    """`loss_of()` recomputed after each of `steps` Adam steps on `params` falls to below half
    its first value and never rises."""
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_of()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses)), losses
