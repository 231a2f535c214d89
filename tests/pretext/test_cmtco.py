"""CMT-Co: the character movement by hand (a rotation of the span's columns), the window the
movement head reads does not depend on the class, short lines are left out, config checks."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import render_lines, to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.cmtco import (
    CMTCo,
    CMTCoConfig,
    move_strip,
    movement_window,
    window_pieces,
)

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=16, dropout=0.0)


def columns(n: int = 10) -> torch.Tensor:
    """One line whose pixel values are their column numbers: (1, 1, 1, n)."""
    return torch.arange(n, dtype=torch.float)[None, None, None, :]


@pytest.mark.parametrize(("start", "offset", "expected"), [
    (2, 0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    (2, 2, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9]),   # swaps with its right neighbour
    (2, 3, [0, 1, 4, 5, 6, 2, 3, 7, 8, 9]),   # 4, 5, 6 shift left to fill its place
    (4, -2, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9]),  # swaps with its left neighbour
    (6, -4, [0, 1, 6, 7, 2, 3, 4, 5, 8, 9]),  # two strips' worth shift right
    (2, 1, [0, 1, 4, 2, 3, 5, 6, 7, 8, 9]),   # less than its width: column 4 jumps over it
])
def test_move_strip_by_hand(start, offset, expected):
    out = move_strip(columns(), torch.tensor([start]), 2, torch.tensor([offset]))
    assert out.flatten().tolist() == expected


def test_move_strip_per_line_and_a_permutation():
    images = columns(12).repeat(3, 1, 2, 1)
    out = move_strip(images, torch.tensor([1, 5, 8]), 3, torch.tensor([4, -3, 0]))
    for row in out[:, 0, 0]:
        assert sorted(row.tolist()) == list(range(12))
    assert torch.equal(out[2], images[2])
    assert out[0, 0, 0].tolist()[5:8] == [1, 2, 3]
    assert out[1, 0, 0].tolist()[2:5] == [5, 6, 7]
    assert torch.equal(out[:, :, 0], out[:, :, 1])  # every row of a line moves alike


def test_movement_window_stays_inside_and_flags_short_lines():
    torch.manual_seed(0)
    cfg = CMTCoConfig(strip=8, step=8, distances=2)  # needs 8 + 2 * 16 = 40 pixels
    widths = torch.tensor([40, 39, 200] * 40)
    start, fits = movement_window(widths, cfg)
    assert fits.tolist() == [True, False, True] * 40
    lo, hi = start - 16, start + 8 + 16
    assert bool((lo[fits] >= 0).all() and (hi[fits] <= widths[fits]).all())
    assert bool((start[~fits] == 0).all())
    assert bool((start[widths == 40] == 16).all())  # exactly fits: one place


def test_window_pieces_by_hand():
    frames = torch.arange(8, dtype=torch.float)[None, :, None]  # frame t holds the value t
    feats = window_pieces(frames, torch.tensor([8]), torch.tensor([32]), 3, 4)  # frames 2..7
    assert feats.flatten().tolist() == [2.5, 4.5, 6.5]


def test_forward_metrics_and_short_lines():
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = CMTCo(CMTCoConfig(strip=8, step=8, distances=2, hidden=16, proj_dim=8,
                                windows=3), encoder)
    lines = render_lines(4)
    lines[0] = lines[0][:, :30]  # too short for a 40-pixel movement window
    loss, metrics = pretext(encoder, to_batch(lines, views=2))
    loss.backward()
    assert float(metrics["short"]) == 25.0
    assert float(metrics["move_chance"]) == pytest.approx(20.0)
    assert float(metrics["chance"]) == pytest.approx(100 / 12)
    assert all(p.grad is not None for p in pretext.move_head.parameters())


@pytest.mark.parametrize(("values", "message"), [
    ({"strip": 0}, "pretext.cmtco.strip"),
    ({"step": 0}, "pretext.cmtco.step"),
    ({"distances": 0}, "pretext.cmtco.distances"),
    ({"move_weight": -1.0}, "pretext.cmtco.move_weight"),
    ({"temperature": 0.0}, "pretext.cmtco.temperature"),
    ({"mapping": "line"}, "pretext.cmtco.mapping"),
])
def test_config_checks_name_the_option(values, message):
    with pytest.raises(ValueError, match=message):
        CMTCoConfig(**values)
