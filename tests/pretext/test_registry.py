"""Every registered pretext gets these for free (timm-style): builds from its default config,
runs forward and backward on a padded batch, trains the encoder, and learns on rendered lines."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.model import (
    build_pretext_model,
    checkpoint_meta,
    pretext_model_from_checkpoint,
)
from htr_ssl.pretext.registry import PRETEXTS, chosen_pretexts, pretext_config

NAMES = sorted(PRETEXTS)
ENCODER = EncoderConfig("small", 32, lstm_hidden=64)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_reaches_the_encoder(name, lines):
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: pretext_config(name)})
    batch = to_batch(lines[:8], model.views)
    loss, metrics = model(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(v.dim() == 0 for v in metrics.values()), metrics
    # its own task is always read against guessing (reports put the two side by side)
    assert 0 < float(metrics[f"{name}/chance"]) < 100 and f"{name}/acc" in metrics
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_forward_changes_no_weight_and_after_step_runs(name, lines):
    """Weights move only through the optimizer and `after_step` (momentum targets, prototype
    normalization), never as a side effect of a training forward."""
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: pretext_config(name)})
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    model(to_batch(lines[:8], model.views))
    for k, p in model.named_parameters():
        assert torch.equal(p, before[k]), k
    with torch.no_grad():  # stand-in for an optimizer step
        for p in model.encoder.parameters():
            p.add_(0.01)
    model.after_step()
    model(to_batch(lines[:8], model.views))  # and training goes on after it


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, lines):
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: pretext_config(name)}, {name: 0.5})
    ckpt = {"model": model.state_dict(), **checkpoint_meta(model)}
    again = pretext_model_from_checkpoint(ckpt)
    assert again.weights == {name: 0.5}
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    assert all(k.startswith(("encoder.", "pretexts.")) for k in ckpt["model"])


def test_unknown_pretext_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"available: .*rotation"):
        pretext_config("rotatoin")
    with pytest.raises(ValueError, match="valid: "):
        pretext_config("rotation", {"modes": "line"})


def test_combined_pretexts_weight_their_losses(lines):
    torch.manual_seed(0)
    names = {n: pretext_config(n) for n in ("rotation", "flip")}
    model = build_pretext_model(ENCODER, names, {"rotation": 2.0, "flip": 0.5})
    torch.manual_seed(1)
    loss, metrics = model(to_batch(lines[:8]))
    expected = 2.0 * metrics["rotation/loss"] + 0.5 * metrics["flip/loss"]
    assert torch.allclose(loss.detach(), expected)


def test_a_chosen_pretext_is_its_options_and_its_weight_in_one_shape():
    """`pretext.<name>` of configs/pretrain.yaml: one conversion gives the config and the
    loss weight (1.0 when not given), with the weight's kind checked like any option."""
    configs, weights = chosen_pretexts({"rotation": {"mode": "line", "weight": 2},
                                        "flip": {}})
    assert configs == {"rotation": pretext_config("rotation", {"mode": "line"}),
                       "flip": pretext_config("flip")}
    assert type(configs["rotation"]) is PRETEXTS["rotation"][0]  # no weight in the config
    assert weights == {"rotation": 2.0, "flip": 1.0} and type(weights["rotation"]) is float
    with pytest.raises(ValueError, match=r"^pretrain.pretext.flip.weight='a': give a number"):
        chosen_pretexts({"flip": {"weight": "a"}}, "pretrain.pretext.")
    with pytest.raises(ValueError, match=r"for pretext 'flip'; valid: .*'weight'"):
        chosen_pretexts({"flip": {"wieght": 1}})
    with pytest.raises(ValueError, match=r"unknown pretext 'flipp'; available: "):
        chosen_pretexts({"flipp": {}})
