"""ChaCo: crops at the same places of both views, jitter bounded, each crop's positive is its
counterpart (identical views retrieve every crop), and the config's checks."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import render_lines, to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.chaco import ChaCo, ChaCoConfig, crop_places
from htr_ssl.pretext.losses.ntxent import nt_xent

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=16, dropout=0.0)


def test_crop_places_stay_inside_and_within_jitter():
    torch.manual_seed(0)
    widths = torch.tensor([100, 40, 16, 10] * 50)
    first, second = crop_places(widths, 16, 3)
    room = (widths - 16).clamp(min=0)
    assert bool((first >= 0).all() and (first <= room).all())
    assert bool((second >= 0).all() and (second <= room).all())
    assert int((second - first).abs().max()) <= 3
    assert bool((first[widths <= 16] == 0).all())  # lines no wider than a crop: the whole line
    first, second = crop_places(widths, 16, 0)
    assert torch.equal(first, second)  # no jitter: the very same columns in both views


def same_pixels_setup(crops: int, lines: int):
    """An eval-mode encoder and ChaCo without jitter, and a batch whose two views are the same
    pixels, so every crop's positive is itself."""
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER).eval()
    pretext = ChaCo(ChaCoConfig(width=16, crops=crops, jitter=0, hidden=16, proj_dim=8),
                    encoder).eval()
    batch = to_batch(render_lines(lines), views=2)
    batch.views[1] = batch.views[0]
    return encoder, pretext, batch


def test_identical_views_find_every_positive():
    encoder, pretext, batch = same_pixels_setup(crops=3, lines=6)
    with torch.no_grad():
        loss, metrics = pretext(encoder, batch)
    assert float(metrics["acc"]) == 100.0
    assert float(metrics["chance"]) == pytest.approx(100 / 18)
    assert float(loss) > 0 and torch.isfinite(loss)


def test_loss_is_nt_xent_of_the_projected_crops():
    encoder, pretext, batch = same_pixels_setup(crops=2, lines=4)
    seen = []
    pretext.head.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        loss, _ = pretext(encoder, batch)
    z = seen[0].unflatten(0, (2, -1))  # (views, lines x crops, proj_dim)
    assert z.shape == (2, 8, 8)
    torch.testing.assert_close(z[0], z[1])  # identical views, same places: same crops
    torch.testing.assert_close(loss, nt_xent(z[0], z[1], 0.1))


def test_needs_two_views():
    encoder = build_encoder(ENCODER)
    pretext = ChaCo(ChaCoConfig(width=16, jitter=0), encoder)
    with pytest.raises(ValueError, match="chaco needs two aligned views"):
        pretext(encoder, to_batch(render_lines(2), views=1))


@pytest.mark.parametrize(("values", "message"), [
    ({"width": 0}, "pretext.chaco.width"),
    ({"crops": 0}, "pretext.chaco.crops"),
    ({"width": 16, "jitter": 8}, "pretext.chaco.jitter"),
    ({"jitter": -1}, "pretext.chaco.jitter"),
    ({"proj_dim": 1}, "pretext.chaco.proj_dim"),
    ({"temperature": 0.0}, "pretext.chaco.temperature"),
])
def test_config_checks_name_the_option(values, message):
    with pytest.raises(ValueError, match=message):
        ChaCoConfig(**values)
