"""Masked frames: masks are whole frames inside each line, padding is never touched or a cue,
the loss learns, and the metric sits at its stated chance level before learning."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.masked import (
    Masked,
    MaskedConfig,
    column_mask,
    sample_distractors,
    span_mask,
)

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)


def test_span_mask_stays_inside_each_line_and_masks_about_the_ratio():
    torch.manual_seed(0)
    n = torch.tensor([60, 7, 1, 33, 3] * 40)
    mask = span_mask(n, 70, ratio=0.5, span=5)
    assert mask.shape == (200, 70)
    t = torch.arange(70)
    assert not (mask & (t[None] >= n[:, None])).any()  # never past a line's frames
    assert mask.any(1).all()  # every line has something to predict
    share = mask[::5].sum() / (40 * 60)
    assert 0.3 < float(share) < 0.5  # overlapping spans: a little under the ratio


def test_span_mask_is_made_of_whole_spans():
    torch.manual_seed(1)
    n = torch.full((50,), 40)
    mask = span_mask(n, 40, ratio=0.3, span=4)
    padded = torch.nn.functional.pad(mask.int(), (1, 1))
    starts = (padded[:, 1:-1] - padded[:, :-2]).eq(1)
    ends = (padded[:, 2:] - padded[:, 1:-1]).eq(-1)
    runs = ends.nonzero()[:, 1] - starts.nonzero()[:, 1] + 1  # lengths of masked runs
    assert (runs >= 4).all()  # spans may merge, never shrink


def test_padding_width_does_not_change_the_mask():
    """The same line padded to two batch widths gets the same mask (padding is no cue)."""
    n = torch.tensor([23])
    torch.manual_seed(3)
    a = span_mask(n, 23, 0.5, 5)
    torch.manual_seed(3)
    b = span_mask(n, 90, 0.5, 5)
    assert torch.equal(a, b[:, :23]) and not b[:, 23:].any()


def test_column_mask_covers_whole_frames_and_stops_at_the_width():
    frames = torch.tensor([[True, False, True, True, False], [False, True, True, False, False]])
    widths = torch.tensor([15, 11])
    cols = column_mask(frames, widths, 20, wstride=4)
    expected = torch.zeros(2, 20, dtype=torch.bool)
    expected[0, 0:4] = True
    expected[0, 8:15] = True  # frames 2-3 are columns 8..15, cut at the width 15
    expected[1, 4:11] = True  # frames 1-2 are columns 4..11, cut at 11
    assert torch.equal(cols, expected)


def test_masked_images_keep_padding_and_unmasked_columns(lines):
    encoder = build_encoder(ENCODER)
    pretext = Masked(MaskedConfig(fill=0.5), encoder)
    batch = to_batch(lines[:8])
    torch.manual_seed(0)
    n = encoder.frame_lengths(batch.widths)
    masked, frames = pretext.mask(batch.images, batch.widths, encoder.wstride, n)
    cols = column_mask(frames, batch.widths, batch.images.shape[-1], encoder.wstride)
    assert frames.shape[1] == -(-batch.images.shape[-1] // encoder.wstride)
    changed = (masked != batch.images).any(dim=2).squeeze(1)  # (B, W)
    assert not (changed & ~cols).any()  # nothing outside the masked columns moved
    assert (masked.squeeze(1).transpose(1, 2)[cols] == 0.5).all()  # masked columns are the fill
    for i, w in enumerate(batch.widths.tolist()):
        assert (masked[i, ..., w:] == 1).all()  # padding stays white


def test_distractors_are_distinct_never_the_anchor_and_same_line_first():
    torch.manual_seed(0)
    line_of = torch.tensor([0] * 6 + [1] * 3 + [2] * 12)
    d = sample_distractors(line_of, 5, chunk=7)
    assert d.shape == (21, 5)
    assert not (d == torch.arange(21)[:, None]).any()
    assert all(len(set(row.tolist())) == 5 for row in d)
    assert (line_of[d[:6]] == 0).all() and (line_of[d[9:]] == 2).all()
    assert (line_of[d[6:9, :2]] == 1).all() and (line_of[d[6:9, 2:]] != 1).all()


def test_loss_decreases_on_a_fixed_batch(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = Masked(MaskedConfig(distractors=10), encoder)
    opt = torch.optim.AdamW([*encoder.parameters(), *pretext.parameters()], lr=2e-3)
    batch = to_batch(lines[:16])
    losses = []
    for _ in range(8):
        torch.manual_seed(1)  # same masks and distractors every step
        loss, _ = pretext(encoder, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.2, losses


def test_metric_is_at_chance_for_an_untrained_model(lines):
    """Before learning, `acc` sits at (or, with ties between blank frames, below) the
    `chance` it reports, 100 / (K + 1); well above it only if the targets leak."""
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = Masked(MaskedConfig(distractors=9), encoder).eval()
    encoder.eval()
    accs = []
    with torch.no_grad():
        for seed in range(4):
            torch.manual_seed(seed)
            _, m = pretext(encoder, to_batch(lines[16 * seed:16 * seed + 16]))
            accs.append(float(m["acc"]))
    assert float(m["chance"]) == pytest.approx(10.0)
    assert sum(accs) / len(accs) < 10.0 + 4.0, accs


def test_learned_fill_is_trained(lines):
    encoder = build_encoder(ENCODER)
    pretext = Masked(MaskedConfig(learned_fill=True), encoder)
    loss, _ = pretext(encoder, to_batch(lines[:4]))
    loss.backward()
    assert pretext.fill.grad is not None and pretext.fill.grad != 0


def test_bad_options_name_the_option():
    with pytest.raises(ValueError, match=r"pretext\.masked\.ratio"):
        MaskedConfig(ratio=1.0)
    with pytest.raises(ValueError, match=r"pretext\.masked\.span"):
        MaskedConfig(span=0)
