"""SeqCLR's instance mappings on padded, variable-length frames, its heads, and its loss on a
batch small enough to work out by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pretext_lines import to_batch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.decorrelation import BarlowConfig, VICRegConfig
from htr_ssl.pretext.instance import (
    ProjectionHead,
    all_to_instance,
    map_instances,
    sample_frames,
    window_to_instance,
    window_weights,
)
from htr_ssl.pretext.seqclr import SeqCLR, SeqCLRConfig
from htr_ssl.pretext.simclr import SimCLRConfig

LENGTHS = torch.tensor([12, 7, 3])


def frames_with_garbage_padding(garbage: float) -> torch.Tensor:
    torch.manual_seed(0)
    frames = torch.randn(3, 12, 4)
    pad = torch.arange(12)[None, :] >= LENGTHS[:, None]
    frames[pad] = garbage
    return frames


@pytest.mark.parametrize("mapping", ["all", "frame", "window"])
def test_padding_never_reaches_an_instance(mapping):
    views = [frames_with_garbage_padding(g)[None] for g in (0.0, 1e6)]
    torch.manual_seed(1)
    clean = map_instances(views[0], LENGTHS, mapping, windows=5, max_frames=1000)
    torch.manual_seed(1)
    dirty = map_instances(views[1], LENGTHS, mapping, windows=5, max_frames=1000)
    assert torch.equal(clean, dirty)


def test_windows_pool_each_lines_own_frames():
    frames = frames_with_garbage_padding(1e6)
    windows = window_to_instance(frames, LENGTHS, 5).view(3, 5, 4)
    # 12 frames into 5 windows: [0,3) [2,5) [4,8) [7,10) [9,12) (adaptive pooling bounds)
    for k, (a, b) in enumerate([(0, 3), (2, 5), (4, 8), (7, 10), (9, 12)]):
        assert torch.allclose(windows[0, k], frames[0, a:b].mean(0))
    # 7 frames: the last window ends at frame 7, not at the padded 12
    assert torch.allclose(windows[1, 4], frames[1, 5:7].mean(0))
    # 3 frames, 5 windows: windows overlap but stay inside the line
    for k, (a, b) in enumerate([(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]):
        assert torch.allclose(windows[2, k], frames[2, a:b].mean(0))
    # the same as torch's adaptive average pooling of each line cut to its length
    for i, n in enumerate(LENGTHS.tolist()):
        pooled = F.adaptive_avg_pool1d(frames[i, :n].T[None], 5)[0].T
        assert torch.allclose(windows[i], pooled, atol=1e-6)
    w = window_weights(LENGTHS, 12, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 5))


def test_all_to_instance_is_the_mean_of_valid_frames():
    frames = frames_with_garbage_padding(1e6)
    assert torch.allclose(all_to_instance(frames, LENGTHS)[1], frames[1, :7].mean(0))


def test_frame_to_instance_count_and_pairing():
    assert len(sample_frames(LENGTHS, 12, 1000)) == 22  # every valid frame: 12 + 7 + 3
    torch.manual_seed(0)
    index = sample_frames(LENGTHS, 12, 10)
    assert len(index) == 10 and len(set(index.tolist())) == 10
    assert all(i % 12 < LENGTHS[i // 12] for i in index.tolist())
    base = frames_with_garbage_padding(0.0)
    pair = torch.stack([base, base + 100])  # view 2 = view 1 + 100, frame by frame
    z = map_instances(pair, LENGTHS, "frame", max_frames=10)
    assert z.shape == (2, 10, 4)
    assert torch.allclose(z[1] - z[0], torch.full((10, 4), 100.0))  # row i is the same frame


class FixedFrames:
    """A stand-in encoder returning fixed frames for the stacked views (view 1, then view 2)."""

    def __init__(self, frames: torch.Tensor, lengths: torch.Tensor) -> None:
        self.frames, self.lengths = frames, lengths

    def dim(self, contextual: bool = True) -> int:
        return self.frames.shape[-1]

    def __call__(self, images, widths, contextual=True):
        return self.frames, self.lengths


def test_seqclr_loss_matches_the_hand_computed_value():
    """One line of 4 frames plus 2 garbage padding frames, 2 windows, no head.
    View 1: (1,0),(1,0),(0,1),(0,1) -> windows a1=(1,0), a2=(0,1).
    View 2: (2,0),(0,2),(-1,1),(-1,1) -> windows b1=(1,1), b2=(-1,1).
    These are the pairs of test_losses_ntxent: with c = 1/sqrt(2) the loss is
    -c/tau + [log(1 + e^(c/tau) + e^(-c/tau)) + log(1 + 2 e^(c/tau))] / 2."""
    v1 = [[1, 0], [1, 0], [0, 1], [0, 1], [9, -9], [9, 9]]
    v2 = [[2, 0], [0, 2], [-1, 1], [-1, 1], [-9, 9], [7, 7]]
    encoder = FixedFrames(torch.tensor([v1, v2], dtype=torch.float32), torch.tensor([4, 4]))
    tau = 0.5
    cfg = SeqCLRConfig(mapping="window", windows=2, head="none", temperature=tau)
    pretext = SeqCLR(cfg, encoder)  # type: ignore[arg-type]
    views = torch.ones(2, 1, 1, 32, 24)
    batch = Batch(views[0], torch.tensor([16]), torch.zeros(1, 1, dtype=torch.long),
                  torch.zeros(1, dtype=torch.long), ["0"], [""], 0, views)
    loss, metrics = pretext(encoder, batch)  # type: ignore[arg-type]
    c = 1 / math.sqrt(2)
    e, f = math.exp(c / tau), math.exp(-c / tau)
    expected = -c / tau + (math.log(1 + e + f) + math.log(1 + 2 * e)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["chance"]) == 50.0


ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)


@pytest.mark.parametrize(("head", "contextual", "dim"), [
    ("none", True, 64), ("none", False, 256),  # BiLSTM frames (2 x 32) or CNN frames (256)
    ("mlp", True, 128), ("mlp", False, 128), ("bilstm", False, 128)])
def test_instance_shapes_per_head_and_frames(lines, head, contextual, dim):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    cfg = SeqCLRConfig(head=head, contextual=contextual, proj_dim=128, windows=5)
    pretext = SeqCLR(cfg, encoder)
    z1, z2 = pretext.instances(encoder, to_batch(lines[:4], views=2))
    assert z1.shape == z2.shape == (4 * 5, dim)


def test_frame_mapping_caps_the_instances(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    batch = to_batch(lines[:4], views=2)
    valid = int(encoder.frame_lengths(batch.widths).sum())
    for cap, expected in ((16, 16), (10_000, valid)):
        pretext = SeqCLR(SeqCLRConfig(mapping="frame", max_frames=cap), encoder)
        assert pretext.instances(encoder, batch)[0].shape[0] == expected


def test_mlp_head_ignores_padding():
    torch.manual_seed(0)
    head = ProjectionHead("mlp", 4, 8, 6).eval()
    with torch.no_grad():
        clean, dirty = (head(frames_with_garbage_padding(g), LENGTHS) for g in (0.0, 1e6))
    assert torch.equal(clean, dirty)
    assert float(clean[1, 7:].abs().sum()) == 0.0


def test_needs_two_views(lines):
    encoder = build_encoder(ENCODER)
    with pytest.raises(ValueError, match="two aligned views"):
        SeqCLR(SeqCLRConfig(), encoder)(encoder, to_batch(lines[:2], views=1))


@pytest.mark.parametrize(("cls", "name", "values"), [
    (SeqCLRConfig, "seqclr", {"mapping": "windows"}),
    (SeqCLRConfig, "seqclr", {"head": "lstm"}),
    (SeqCLRConfig, "seqclr", {"temperature": 0.0}),
    (VICRegConfig, "vicreg", {"windows": 0}),
    (BarlowConfig, "barlow", {"lambd": -1.0}),
    (SimCLRConfig, "simclr", {"temperature": -0.1})])
def test_bad_options_name_the_option(cls, name, values):
    option = next(iter(values))
    with pytest.raises(ValueError, match=f"pretext.{name}.{option}"):
        cls(**values)
