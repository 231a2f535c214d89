"""SwAV: Sinkhorn-Knopp equipartition, the swapped prediction value by hand, it trains."""

from __future__ import annotations

import math

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.swav import sinkhorn, swapped_prediction


def test_sinkhorn_rows_are_distributions_and_prototypes_share_the_samples():
    torch.manual_seed(0)
    scores = torch.randn(12, 4)
    scores[:, 0] += 3  # every sample prefers prototype 0 ...
    q = sinkhorn(scores, epsilon=0.5, iterations=50)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-4)
    assert torch.allclose(q.sum(0), torch.full((4,), 3.0), atol=1e-3)  # ... but gets 1/4


def test_sinkhorn_by_hand_on_two_samples():
    """scores [[1, 0], [0, 1]], epsilon 1: exp gives [[e, 1], [1, e]], already balanced, so
    every normalization keeps it: rows (e, 1) / (e + 1)."""
    q = sinkhorn(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 1.0, 3)
    a = math.e / (math.e + 1)
    assert torch.allclose(q, torch.tensor([[a, 1 - a], [1 - a, a]]), atol=1e-6)


def test_swapped_prediction_by_hand():
    """Two views, one sample, K = 2. Codes q1 = (1, 0), q2 = (0, 1); scores s1 = (0, 0),
    s2 = (1, 0), temperature 1. Loss = mean(H(q1, softmax s2), H(q2, softmax s1))."""
    scores = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]]])
    codes = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    h12 = -(1 - math.log(math.e + 1))
    h21 = math.log(2)
    got = swapped_prediction(scores, codes, 1.0)
    assert float(got) == pytest.approx((h12 + h21) / 2, rel=1e-6)


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    scores = torch.randn(2, 16, 8, requires_grad=True)
    codes = torch.stack([sinkhorn(s) for s in torch.randn(2, 16, 8)])
    assert_descends(lambda: swapped_prediction(scores, codes), [scores], lr=0.05)
