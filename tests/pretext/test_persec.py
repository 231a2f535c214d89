"""PerSec: both levels learn, neither leaks its answer before training, options are checked."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.masked import contrast_masked
from htr_ssl.pretext.persec import PerSec, PerSecConfig

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)


def test_encoder_context_is_the_rest_of_forward(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER).eval()
    batch = to_batch(lines[:4])
    with torch.no_grad():
        frames, lengths = encoder(batch.images, batch.widths, False)
        full, _ = encoder(batch.images, batch.widths, True)
        torch.testing.assert_close(encoder.context(frames, lengths), full)


def test_both_levels_are_at_chance_untrained_and_their_losses_fall(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(distractors=9, span=3), encoder)
    with torch.no_grad():
        accs = []
        for seed in range(3):
            torch.manual_seed(seed)
            _, m = pretext(encoder, to_batch(lines[16 * seed:16 * seed + 16]))
            accs.append((float(m["acc"]), float(m["stroke_acc"])))
    assert float(m["chance"]) == pytest.approx(10.0)
    for level in range(2):
        assert sum(a[level] for a in accs) / len(accs) < 10.0 + 4.0, accs
    opt = torch.optim.AdamW([*encoder.parameters(), *pretext.parameters()], lr=2e-3)
    batch = to_batch(lines[:16])
    losses = []
    for _ in range(10):
        torch.manual_seed(1)  # same masks and distractors every step
        total, m = pretext(encoder, batch)
        losses.append((float(m["stroke_loss"]), float(m["semantic_loss"])))
        opt.zero_grad()
        total.backward()
        opt.step()
    first, last = losses[0], losses[-1]
    assert last[0] < first[0] - 0.2 and last[1] < first[1] - 0.2, losses


def test_the_mask_embedding_and_both_heads_get_gradients(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(), encoder)
    loss, _ = pretext(encoder, to_batch(lines[:4]))
    loss.backward()
    for name, p in pretext.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_a_level_weighted_zero_is_left_out(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(stroke_weight=0.0), encoder)
    torch.manual_seed(3)
    loss, m = pretext(encoder, to_batch(lines[:4]))
    assert float(loss.detach()) == pytest.approx(float(m["semantic_loss"]))


def test_a_single_masked_frame_has_nothing_to_be_told_from():
    q = torch.randn(1, 4, requires_grad=True)
    loss, acc, candidates = contrast_masked(q, torch.randn(1, 4), torch.zeros(1, dtype=torch.long),
                                            20, 0.1)
    assert float(loss.detach()) == 0.0 and float(acc) == 100.0 and candidates == 1
    loss.backward()


def test_needs_a_bilstm():
    encoder = build_encoder(EncoderConfig("small", 32, lstm_layers=0))
    with pytest.raises(ValueError, match="lstm_layers"):
        PerSec(PerSecConfig(), encoder)


@pytest.mark.parametrize("values, option", [
    ({"ratio": 1.0}, "ratio"), ({"span": 0}, "span"), ({"distractors": 0}, "distractors"),
    ({"hidden": 0}, "hidden"), ({"dim": 0}, "dim"), ({"window": 4}, "window"),
    ({"temperature": 0.0}, "temperature"), ({"stroke_weight": -1.0}, "stroke_weight"),
    ({"stroke_weight": 0.0, "semantic_weight": 0.0}, "semantic_weight")])
def test_bad_options_name_the_option(values, option):
    with pytest.raises(ValueError, match=rf"pretext\.persec\.{option}"):
        PerSecConfig(**values)
