"""The bootstrap loss: minimum 0 at agreement, scale-free, and no gradient into the target."""

from __future__ import annotations

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.byol import normalized_mse


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    p = torch.randn(16, 32, requires_grad=True)
    z = torch.randn(16, 32)
    assert_descends(lambda: normalized_mse(p, z), [p], lr=0.1)


def test_values_at_agreement_orthogonality_and_opposition():
    z = torch.randn(8, 16)
    assert float(normalized_mse(z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(normalized_mse(3.0 * z, z)) == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert float(normalized_mse(-z, z)) == pytest.approx(4.0, abs=1e-5)
    e = torch.eye(2)
    assert float(normalized_mse(e, e.flip(0))) == pytest.approx(2.0, abs=1e-6)


def test_target_gets_no_gradient_and_bf16_is_computed_in_fp32():
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    loss = normalized_mse(p.bfloat16(), z.bfloat16())
    assert loss.dtype == torch.float32
    loss.backward()
    assert p.grad is not None and z.grad is None


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        normalized_mse(torch.randn(4, 8), torch.randn(4, 9))
