"""CPC's InfoNCE over indexed candidates: the value by hand, gradients, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.cpc import cpc_infonce, indexed_logits


def test_matches_the_hand_computed_value():
    """Targets e1, e2, -e1; prediction 1 = (1, 1) with candidates [t0 (pos), t1]: cosines
    c, c; prediction 2 = (0, 3) with candidates [t1 (pos), t0, t2]: cosines 1, 0, 0."""
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    preds = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    tau, c = 0.5, 1 / math.sqrt(2)
    # prediction 1 has one negative: pad its row with a repeat of the negative
    candidates = torch.tensor([[0, 1, 1], [1, 0, 2]])
    l1 = -c / tau + math.log(3 * math.exp(c / tau))
    l2 = -1 / tau + math.log(math.exp(1 / tau) + 2)
    got = cpc_infonce(preds, targets, candidates, tau)
    assert float(got) == pytest.approx((l1 + l2) / 2, rel=1e-6)
    assert indexed_logits(preds, targets, candidates, 1.0).shape == (2, 3)


def test_both_sides_get_gradients():
    preds = torch.randn(6, 8, requires_grad=True)
    targets = torch.randn(10, 8, requires_grad=True)
    cand = torch.stack([torch.randperm(10)[:4] for _ in range(6)])
    cpc_infonce(preds, targets, cand).backward()
    assert preds.grad is not None and targets.grad is not None


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    preds = torch.randn(32, 16, requires_grad=True)
    targets = torch.randn(64, 16)
    cand = torch.stack([torch.randperm(64)[:9] for _ in range(32)])
    assert_descends(lambda: cpc_infonce(preds, targets, cand), [preds], lr=0.05)


def test_mismatched_rows_are_an_error():
    with pytest.raises(ValueError, match="one candidate row"):
        cpc_infonce(torch.randn(3, 4), torch.randn(5, 4), torch.zeros(2, 3, dtype=torch.long))
