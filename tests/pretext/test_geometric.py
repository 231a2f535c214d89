"""Rotation and flip: the recorded label undoes the transform exactly, and padding never moves."""

from __future__ import annotations

import torch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.geometric import Flip, FlipConfig, Rotation, RotationConfig


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    widths = torch.tensor([40, 64, 17, 33])
    images = torch.ones(4, 1, 16, 64)
    for i, w in enumerate(widths):
        images[i, :, :, :w] = torch.rand(1, 16, int(w))
    return images, widths


def test_hflip_within_mirrors_inside_the_width_and_is_its_own_inverse():
    images, widths = padded_batch()
    flipped = ops.hflip_within(images, widths)
    for i, w in enumerate(widths.tolist()):
        assert torch.equal(flipped[i, ..., :w], images[i, ..., :w].flip(-1))
        assert torch.equal(flipped[i, ..., w:], images[i, ..., w:])  # padding stays put
    assert torch.equal(ops.hflip_within(flipped, widths), images)


def test_line_rotation_label_undoes_exactly():
    images, widths = padded_batch()
    rot = Rotation(RotationConfig(mode="line"), build_encoder(EncoderConfig("small", 16)))
    label = torch.tensor([0, 1, 1, 0])
    turned, _ = rot.transform(images, widths, label)
    assert torch.equal(turned[0], images[0]) and not torch.equal(turned[1], images[1])
    back, _ = rot.transform(turned, widths, label)  # a half turn is its own inverse
    assert torch.equal(back, images)


def test_square_rotation_label_undoes_exactly():
    images, widths = padded_batch()
    rot = Rotation(RotationConfig(mode="square"), build_encoder(EncoderConfig("small", 16)))
    label = torch.tensor([0, 1, 2, 3])
    torch.manual_seed(5)
    turned, new_widths = rot.transform(images, widths, label)
    assert turned.shape == (4, 1, 16, 16) and new_widths.tolist() == [16] * 4
    torch.manual_seed(5)  # the same crops, unrotated
    squares = ops.random_square_crops(images, widths)
    assert torch.equal(ops.rot90(turned, (4 - label) % 4), squares)
    # the crop lies inside each line (for lines at least 16 wide): no padding column in it
    for i, w in enumerate(widths.tolist()):
        if w >= 16:
            assert (squares[i] < 1).any(dim=-2).all()


def test_flip_label_undoes_exactly():
    images, widths = padded_batch()
    label = torch.tensor([0, 1, 2, 3])
    flipped = Flip.transform(images, widths, label)
    assert torch.equal(flipped[0], images[0])
    assert torch.equal(flipped[2], images[2].flip(-2))
    assert torch.equal(Flip.transform(flipped, widths, label), images)
    # "both" is a half turn
    rot = Rotation(RotationConfig(), build_encoder(EncoderConfig("small", 16)))
    assert torch.equal(flipped[3], rot.transform(images, widths, torch.ones(4).long())[0][3])


def test_heads_see_the_chosen_features():
    enc = build_encoder(EncoderConfig("small", 16, lstm_hidden=32))
    assert Flip(FlipConfig(contextual=False), enc).head[0].in_features == enc.cnn_dim
    assert Flip(FlipConfig(), enc).head[0].in_features == 64
