"""BYOL / SimSiam: no collapse on rendered lines, and BYOL's momentum target follows the EMA
formula exactly, only after optimizer steps (never in forward), without gradients, resuming
exactly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext import bootstrap
from htr_ssl.pretext.bootstrap import BYOL, BYOLConfig, SimSiam, SimSiamConfig
from htr_ssl.pretext.model import build_pretext_model

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)
DIM = 64
HEALTHY = 1 / math.sqrt(DIM)  # per-dim std of unit vectors spread evenly over DIM dims


def small(name: str, **kw):
    cls = BYOLConfig if name == "byol" else SimSiamConfig
    return cls(dim=DIM, proj_hidden=128, pred_hidden=128 if name == "byol" else 16, **kw)


def train_std(name: str, lines, steps: int = 16) -> list[float]:
    """The `std` metric along `steps` training steps on batches of 8 rendered lines."""
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: small(name)})
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    stds = []
    for step in range(steps):
        i = (step * 8) % 80
        loss, metrics = model(to_batch(lines[i:i + 8], 2, seed=step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step()  # momentum targets follow (as the training loop does)
        stds.append(float(metrics[f"{name}/std"]))
    return stds


@pytest.mark.parametrize("name", ["byol", "simsiam"])
def test_no_collapse_on_rendered_lines(name, lines):
    stds = train_std(name, lines)
    assert min(stds[-5:]) > 0.5 * HEALTHY, stds


def test_the_collapse_detector_fires_without_stop_gradient(lines, monkeypatch):
    """The check above can fail: SimSiam with the stop-gradient removed heads for collapse."""
    def no_stop_gradient(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (2 - 2 * (F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(1)).mean()

    monkeypatch.setattr(bootstrap, "normalized_mse", no_stop_gradient)
    stds = train_std("simsiam", lines)
    assert stds[-1] < 0.5 * HEALTHY < stds[0], stds


def byol_and_encoder(**kw) -> tuple[BYOL, torch.nn.Module]:
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    return BYOL(small("byol", **kw), encoder), encoder


def target_params(byol: BYOL) -> list[torch.Tensor]:
    return [p.detach().clone() for m in (byol.target_encoder, byol.target_projector)
            for p in m.parameters()]


def online_params(byol: BYOL, encoder) -> list[torch.Tensor]:
    return [p.detach().clone() for m in (encoder, byol.projector) for p in m.parameters()]


def perturb(encoder, byol: BYOL) -> None:
    """Stand-in for an optimizer step on the online weights."""
    with torch.no_grad():
        for m in (encoder, byol.projector):
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))


def test_target_moves_by_the_ema_formula_after_steps_only(lines):
    byol, encoder = byol_and_encoder(momentum=0.9)
    for t, o in zip(target_params(byol), online_params(byol, encoder), strict=True):
        assert torch.equal(t, o)  # the target starts as a copy
    batch = to_batch(lines[:4], 2)
    for update in (1, 2):
        perturb(encoder, byol)  # stand-in for an optimizer step
        before, online = target_params(byol), online_params(byol, encoder)
        byol(encoder, batch)  # a training forward moves nothing
        for t, b in zip(target_params(byol), before, strict=True):
            assert torch.equal(t, b)
        byol.after_step(encoder)
        for t, b, o in zip(target_params(byol), before, online, strict=True):
            torch.testing.assert_close(t, 0.9 * b + 0.1 * o, rtol=0, atol=1e-6)
            assert not torch.equal(b, o)
        assert int(byol.step) == update
    _, metrics = byol(encoder, batch)
    assert float(metrics["momentum"]) == pytest.approx(0.9)


def test_target_gets_no_gradient_and_is_not_trained(lines):
    byol, encoder = byol_and_encoder()
    loss, _ = byol(encoder, to_batch(lines[:4], 2))
    loss.backward()
    targets = [*byol.target_encoder.parameters(), *byol.target_projector.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in targets)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    assert any(p.grad is not None for p in byol.predictor.parameters())


def test_cosine_momentum_schedule_and_exact_resume(lines):
    byol, _ = byol_and_encoder(momentum=0.99, momentum_steps=10)
    assert byol.momentum() == pytest.approx(0.99)
    byol.step.fill_(5)
    assert byol.momentum() == pytest.approx(0.995)
    byol.step.fill_(10)
    assert byol.momentum() == 1.0
    byol.step.fill_(20)
    assert byol.momentum() == 1.0  # past the schedule: the target is frozen
    byol.step.fill_(3)
    again, _ = byol_and_encoder(momentum=0.99, momentum_steps=10)
    again.load_state_dict(byol.state_dict())  # the step is in the checkpoint
    assert int(again.step) == 3 and again.momentum() == byol.momentum()


def test_user_errors_name_the_option(lines):
    with pytest.raises(ValueError, match=r"pretext\.byol\.momentum"):
        BYOLConfig(momentum=1.5)
    with pytest.raises(ValueError, match=r"pretext\.simsiam\.instances"):
        SimSiamConfig(instances="frames")
    encoder = build_encoder(ENCODER)
    with pytest.raises(ValueError, match="simsiam needs two aligned views"):
        SimSiam(small("simsiam"), encoder)(encoder, to_batch(lines[:2], 1))
