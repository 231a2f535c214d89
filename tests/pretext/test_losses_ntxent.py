"""NT-Xent: the value on a tiny batch worked out by hand, its temperature, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch

from htr_ssl.pretext.losses.ntxent import nt_xent, positive_top1

# Two pairs of 2-d instances: a1=(1,0) <-> b1=(1,1)/sqrt2 and a2=(0,1) <-> b2=(-1,1)/sqrt2.
Z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
Z2 = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])  # not normalized: nt_xent normalizes


def hand_value(tau: float) -> float:
    """Cosines: a1.a2 = b1.b2 = 0, a1.b1 = a2.b1 = a2.b2 = c, a1.b2 = -c, c = 1/sqrt(2).
    Each anchor's loss is -pos/tau + log(sum over the 3 others of exp(sim/tau)):
      a1: others a2 (0), b1 (c, pos), b2 (-c)    a2: a1 (0), b1 (c), b2 (c, pos)
      b1: a1 (c, pos), a2 (c), b2 (0)            b2: a1 (-c), a2 (c, pos), b1 (0)
    """
    c = 1 / math.sqrt(2)
    e, f = math.exp(c / tau), math.exp(-c / tau)
    per_anchor = [-c / tau + math.log(1 + e + f), -c / tau + math.log(1 + 2 * e),
                  -c / tau + math.log(2 * e + 1), -c / tau + math.log(f + e + 1)]
    return sum(per_anchor) / 4


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_matches_the_hand_computed_value(tau):
    assert float(nt_xent(Z1, Z2, tau)) == pytest.approx(hand_value(tau), rel=1e-5)


def test_swapping_the_views_or_the_pairs_consistently_changes_nothing():
    loss = nt_xent(Z1, Z2, 0.5)
    assert torch.allclose(nt_xent(Z2, Z1, 0.5), loss)
    assert torch.allclose(nt_xent(Z1.flip(0), Z2.flip(0), 0.5), loss)
    # pairing a1 with b2 instead is a different (worse) problem
    assert float(nt_xent(Z1, Z2.flip(0), 0.5)) > float(loss)


def test_lower_temperature_sharpens_separated_pairs():
    """Positives identical, negatives orthogonal: loss = log(1 + 2 exp(-1/tau)) -> 0 as tau
    falls, the reason a small temperature rewards a clear margin."""
    z = torch.eye(2)
    for tau in (1.0, 0.5, 0.1):
        expected = math.log(1 + 2 * math.exp(-1 / tau))
        assert float(nt_xent(z, z, tau)) == pytest.approx(expected, rel=1e-3)
    assert float(nt_xent(z, z, 0.1)) < float(nt_xent(z, z, 0.5)) < float(nt_xent(z, z, 1.0))


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    z1 = torch.randn(16, 8, requires_grad=True)
    z2 = torch.randn(16, 8, requires_grad=True)
    opt = torch.optim.SGD([z1, z2], lr=0.5)
    first = float(nt_xent(z1, z2, 0.2).detach())
    assert float(positive_top1(z1, z2)) < 50
    for _ in range(40):
        loss = nt_xent(z1, z2, 0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(nt_xent(z1, z2, 0.2).detach()) < 0.5 * first
    assert float(positive_top1(z1, z2)) == 100.0


def test_positive_top1_counts_anchors_whose_nearest_is_their_pair():
    eye = torch.eye(3)
    assert float(positive_top1(eye, eye)) == 100.0
    assert float(positive_top1(eye, eye[[0, 2, 1]])) == pytest.approx(100 / 3)
