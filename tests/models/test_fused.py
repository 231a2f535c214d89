"""The fused paths compute what the plain ones do: the CPU reading path (cpu_inference.py) to
bf16 rounding, the fused training ops (ops.py, ReLU after max-pool, the BiLSTM's reversal)
to the last bit of the loss and every gradient."""

from __future__ import annotations

import copy

import pytest
import torch

from htr_ssl.models import cpu_inference
from htr_ssl.models.encoders import PRESETS, EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

WIDTHS = torch.tensor([160, 97, 130, 9, 151])  # odd widths: pooling windows half in padding


def _recognizer(preset: str, dropout: float = 0.1) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig(EncoderConfig(preset, 32, dropout=dropout),
                                              DecoderConfig("ctc", dropout=dropout)), 20)
    for m in model.modules():  # BatchNorm statistics that folding can get wrong
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


def _read(model: torch.nn.Module, images: torch.Tensor, fused: bool, bf16: bool
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    model.encoder.set_fused(fused)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        visual, _ = model.encoder(images, WIDTHS, contextual=False)
        logits, lengths = model.ctc_logits(images, WIDTHS)
    return visual.float(), logits.float(), lengths


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("bf16", [False, True])
def test_fused_reading_equals_plain(preset: str, bf16: bool) -> None:
    model = _recognizer(preset).eval()
    images = torch.rand(len(WIDTHS), 1, 32, 160)
    with torch.no_grad():
        assert cpu_inference.supported(model.encoder, images)
    v0, l0, n0 = _read(model, images, False, bf16)
    v1, l1, n1 = _read(model, images, True, bf16)
    assert torch.equal(n0, n1)
    tol = {"rtol": 2e-2, "atol": 2e-2} if bf16 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(v1, v0, **tol)
    torch.testing.assert_close(l1, l0, **tol)
    # frames beyond each line's length are zero on both paths
    for b, n in enumerate(n1.tolist()):
        assert not v1[b, n:].any()


def test_fused_reading_follows_weight_updates() -> None:
    """The folded, packed weights are rebuilt when a parameter or BN statistic changes."""
    model = _recognizer("small").eval()
    images = torch.rand(len(WIDTHS), 1, 32, 160)
    before = _read(model, images, True, False)[1]
    with torch.no_grad():
        model.encoder.cnn[0].conv.weight.mul_(1.5)
        model.encoder.cnn[2].bn.running_var.mul_(2.0)
    after_fused, after_plain = _read(model, images, True, False)[1], _read(model, images, False,
                                                                           False)[1]
    assert not torch.allclose(before, after_fused)
    torch.testing.assert_close(after_fused, after_plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("bf16", [False, True])
def test_fused_training_step_equals_plain(preset: str, bf16: bool) -> None:
    plain = _recognizer(preset, dropout=0.0).train()
    fused = copy.deepcopy(plain)
    plain.encoder.set_fused(False)
    fused.encoder.set_fused(True)
    images = torch.rand(len(WIDTHS), 1, 32, 160)
    targets = torch.randint(1, 21, (len(WIDTHS), 5))
    target_lengths = torch.tensor([5, 3, 4, 1, 2])
    results = []
    for model in (plain, fused):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model.loss(images, WIDTHS, targets, target_lengths)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (loss0, grads0), (loss1, grads1) = results
    assert torch.equal(loss0, loss1)
    for name, grad in grads0.items():
        assert torch.equal(grads1[name], grad), name
