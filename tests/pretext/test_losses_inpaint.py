"""Masked MSE and per-patch normalization: values by hand, masked pixels only, it trains."""

from __future__ import annotations

import itertools

import pytest
import torch

from htr_ssl.pretext.losses.inpaint import masked_mse, normalize_patches


def test_masked_mse_counts_masked_elements_only():
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    target = torch.tensor([[0.0, 0.0, 0.0, 100.0]])
    mask = torch.tensor([[True, False, True, False]])
    assert float(masked_mse(pred, target, mask)) == pytest.approx((1 + 9) / 2)
    assert float(masked_mse(pred, target, torch.zeros_like(mask))) == 0.0


def test_normalize_patches_by_hand():
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0]])  # mean 0.5, variance 0.25
    out = normalize_patches(x, eps=0.0)
    assert torch.allclose(out, torch.tensor([[-1.0, 1.0, -1.0, 1.0]]))
    blank = normalize_patches(torch.full((1, 4), 0.98))
    assert float(blank.abs().max()) < 1e-6  # paper stays 0, no noise blown up


def test_target_gets_no_gradient_and_it_trains():
    torch.manual_seed(0)
    pred = torch.randn(4, 8, requires_grad=True)
    target = torch.randn(4, 8, requires_grad=True)
    mask = torch.rand(4, 8) < 0.5
    opt = torch.optim.Adam([pred], lr=0.1)
    losses = []
    for _ in range(20):
        loss = masked_mse(pred, target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert target.grad is None
    assert losses[-1] < 0.5 * losses[0]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses))
