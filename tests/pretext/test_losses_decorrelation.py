"""VICReg and Barlow Twins: each term does what it is for, and both losses train."""

from __future__ import annotations

import pytest
import torch

from htr_ssl.pretext.losses.barlow import barlow_twins, cross_correlation
from htr_ssl.pretext.losses.vicreg import vicreg, vicreg_terms


def hadamard8() -> torch.Tensor:
    """8 x 7: the non-constant columns of the 8 x 8 Hadamard matrix: zero mean, unit variance,
    mutually uncorrelated - the ideal embedding of both losses."""
    h = torch.ones(1, 1)
    for _ in range(3):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h[:, 1:]


@pytest.mark.parametrize("loss", [vicreg, barlow_twins])
def test_decreases_under_gradient_steps(loss):
    torch.manual_seed(0)
    z1 = (0.1 * torch.randn(32, 8)).requires_grad_()
    z2 = (0.1 * torch.randn(32, 8)).requires_grad_()
    opt = torch.optim.Adam([z1, z2], lr=0.05)
    first = float(loss(z1, z2).detach())
    for _ in range(30):
        value = loss(z1, z2)
        opt.zero_grad()
        value.backward()
        opt.step()
    assert float(loss(z1, z2).detach()) < 0.5 * first


def test_barlow_is_zero_for_correlated_views_of_decorrelated_dims():
    z = hadamard8()
    assert float(barlow_twins(z, z)) == pytest.approx(0.0, abs=1e-6)
    # per-dimension standardization: scale and offset of a view do not matter
    assert float(barlow_twins(z, 3 * z + 5)) == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(cross_correlation(z, z), torch.eye(7), atol=1e-4)


def test_barlow_penalizes_disagreement_and_redundancy():
    z = hadamard8()
    swapped = z[:, [1, 0, 2, 3, 4, 5, 6]]  # dims 0 and 1 disagree across views
    assert float(barlow_twins(z, swapped, lambd=0.0)) == pytest.approx(2.0, abs=1e-3)
    redundant = z.clone()
    redundant[:, 1] = redundant[:, 0]  # two dims carry the same thing
    # the off-diagonal C_01 = C_10 = 1 costs 2 * lambd; C_11 = 0 costs (1 - 0)^2 = 1
    assert float(barlow_twins(redundant, redundant, lambd=0.5)) == pytest.approx(1.0, abs=1e-3)


def test_vicreg_variance_term_penalizes_collapse():
    collapsed = torch.ones(16, 4)
    t = vicreg_terms(collapsed, collapsed)
    assert float(t.invariance) == 0.0  # views agree perfectly ...
    assert float(t.variance) == pytest.approx(0.99, abs=1e-3)  # ... but std 0 < 1 is penalized
    assert float(t.std) == 0.0
    spread = 2 * hadamard8()  # std 2 > 1 in every dim: no penalty
    assert float(vicreg_terms(spread, spread).variance) == 0.0


def test_vicreg_covariance_and_invariance_terms():
    z = hadamard8()
    assert float(vicreg_terms(z, z).covariance) == pytest.approx(0.0, abs=1e-6)
    redundant = z.clone()
    redundant[:, 1] = redundant[:, 0]
    # cov(0, 1) = 8/7 (unbiased), counted twice, squared, divided by D = 7
    assert float(vicreg_terms(redundant, redundant).covariance) == pytest.approx(
        2 * (8 / 7) ** 2 / 7, rel=1e-4)
    assert float(vicreg_terms(z, z + 1).invariance) == pytest.approx(1.0)
    # the default weights are the paper's 25 / 25 / 1
    t = vicreg_terms(redundant, redundant + 1)
    expected = 25 * t.invariance + 25 * t.variance + t.covariance
    assert float(vicreg(redundant, redundant + 1)) == pytest.approx(float(expected))
