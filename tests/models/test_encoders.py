"""Encoder presets: shapes, frame counts, size of `small`, and padding that changes nothing."""

from __future__ import annotations

import pytest
import torch

from htr_ssl.models.encoders import PRESETS, EncoderConfig, build_encoder, count_parameters


@pytest.fixture(scope="module", params=PRESETS)
def encoder(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_encoder(EncoderConfig(request.param, height=32)).eval()


@pytest.mark.parametrize("height", [32, 64])
def test_shapes_and_lengths(encoder: torch.nn.Module, height: int) -> None:
    widths = torch.tensor([77, 40, 13])
    images = torch.rand(3, 1, height, 77)
    with torch.no_grad():
        frames, lengths = encoder(images, widths)
        fmap = encoder.feature_map(images)
    assert frames.shape == (3, int(lengths.max()), encoder.out_dim)
    assert frames.dtype == torch.float32
    assert torch.equal(lengths, encoder.frame_lengths(widths))
    assert fmap.shape[:3] == (3, encoder.cnn_dim, height // 16)
    assert fmap.shape[3] == frames.shape[1]


def test_rejects_height_not_multiple_of_16() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        build_encoder(EncoderConfig("small", height=40))


def test_small_parameter_count() -> None:
    n = count_parameters(build_encoder(EncoderConfig("small", height=64)))
    assert 1_000_000 <= n <= 3_000_000


def test_cnn_only_frames() -> None:
    enc = build_encoder(EncoderConfig("small", height=32, lstm_layers=0)).eval()
    frames, _ = enc(torch.rand(2, 1, 32, 50), torch.tensor([50, 30]))
    assert enc.lstm is None and frames.shape[-1] == enc.out_dim == enc.cnn_dim


@pytest.mark.parametrize("preset", PRESETS)
def test_padding_is_neutral(preset: str) -> None:
    """A line's frames are the same alone or padded (white) next to a wider line, in eval mode."""
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(preset, height=32)).eval()
    short = torch.rand(1, 1, 32, 45)
    batch = torch.ones(2, 1, 32, 120)
    batch[0, :, :, :45] = short[0]
    batch[1] = torch.rand(1, 32, 120)
    with torch.no_grad():
        alone, n_alone = enc(short, torch.tensor([45]))
        padded, n_padded = enc(batch, torch.tensor([45, 120]))
    n = int(n_alone[0])
    assert n == int(n_padded[0])
    torch.testing.assert_close(padded[0, :n], alone[0, :n], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("preset", PRESETS)
def test_inference_path_equals_the_autograd_path(preset: str) -> None:
    """Without gradients on the CPU the blocks fold BatchNorm into the conv, mask in place and
    pool through a view; the frames must be those of the path training and Grad-CAM use."""
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(preset, height=32)).eval()
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # fresh statistics would fold to ~identity
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    images, widths = torch.rand(3, 1, 32, 128), torch.tensor([128, 90, 37])
    reference, n_reference = enc(images, widths)  # gradients on: the autograd path
    with torch.inference_mode():
        fast, n_fast = enc(images, widths)
    assert reference.requires_grad and not fast.requires_grad
    assert torch.equal(n_fast, n_reference)
    torch.testing.assert_close(fast, reference.detach(), atol=1e-4, rtol=1e-4)
