"""Heat maps: Grad-CAM / feature norms / attention of tiny models, files and their pixel sizes."""

import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.sample import Sample, TextImageDataset, collate
from htr_ssl.eval import overlays
from htr_ssl.eval.heatmap_report import HeatmapConfig, safe_name, unique_names, write_heatmaps
from htr_ssl.eval.heatmaps import (
    attention_maps,
    attention_score,
    ctc_score,
    feature_norm,
    gradcam,
    load_subject,
    pretext_score,
)
from htr_ssl.models.encoders import Encoder, EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer
from htr_ssl.pretext.geometric import RotationConfig
from htr_ssl.pretext.model import build_pretext_model, checkpoint_meta
from htr_ssl.train import checkpoint

ALPHABET = Alphabet(tuple(" abcdefghijklmnopqrstuvwxyz"))


def _recognizer(decoder="hybrid", seed=0):
    torch.manual_seed(seed)
    cfg = RecognizerConfig(EncoderConfig("small", 32),
                           DecoderConfig(decoder, attn_hidden=32, max_len=12))
    return build_recognizer(cfg, ALPHABET).eval(), cfg


def _save(tmp_path, name, decoder="hybrid", seed=0):
    """A checkpoint in the format train_recognizer writes (fit's snapshot + its meta)."""
    model, cfg = _recognizer(decoder, seed)
    path = tmp_path / name / "best.pt"
    checkpoint.save({"model": model.state_dict(), "kind": "recognizer",
                     "alphabet": ALPHABET.to_dict(), "model_config": asdict(cfg),
                     "config": {}}, path)
    return path


def _pretext_model():
    torch.manual_seed(0)
    return build_pretext_model(EncoderConfig("small", 32), {"rotation": RotationConfig()}).eval()


def _batch(tiny_lines, n=3):
    samples = [Sample(f"line/{i}", tiny_lines / f"{i:03d}.png", "") for i in range(n)]
    return collate([TextImageDataset(samples, None, 32)[i] for i in range(n)]), samples


def test_gradcam_and_feature_norm_have_each_lines_size(tiny_lines):
    model, _ = _recognizer()
    batch, _ = _batch(tiny_lines)
    batch.widths[1] = 77  # a narrower line in a padded batch
    for score in (ctc_score(model), attention_score(model, [[1, 2], [3], []])):
        cams = gradcam(model.encoder, score, batch.images, batch.widths)
        for cam, line, w in zip(cams.maps, cams.lines, batch.widths.tolist(), strict=True):
            assert cam.shape == line.shape == (32, w)
            assert (cam >= 0).all() and cam.max() > 0
    norms = feature_norm(model.encoder, batch.images, batch.widths)
    assert [n.shape for n in norms] == [(32, w) for w in batch.widths.tolist()]
    assert all((n >= 0).all() and n.max() > 0 for n in norms)


def test_gradcam_weighs_channels_by_their_mean_gradient(tiny_lines):
    """Score = 2 x (sum of channel 5) - (sum of channel 7): Grad-CAM must be
    ReLU(2 A_5 - A_7), upsampled exactly like the feature-norm map."""
    model, _ = _recognizer("ctc")
    batch, _ = _batch(tiny_lines, 2)

    def score(images, widths):
        fmap = model.encoder.feature_map(images, widths)
        return 2 * fmap[:, 5].sum() - fmap[:, 7].sum()

    cams = gradcam(model.encoder, score, batch.images, batch.widths).maps
    fmap = model.encoder.feature_map(batch.images, batch.widths).detach()
    expected = torch.relu(2 * fmap[:, 5] - fmap[:, 7])  # (B, h, T)
    frames = model.encoder.frame_lengths(batch.widths)
    for i, cam in enumerate(cams):
        want = torch.nn.functional.interpolate(
            expected[i : i + 1, None, :, : int(frames[i])], size=(32, int(frames[i]) * 4),
            mode="bilinear", align_corners=False)[0, 0, :, : int(batch.widths[i])]
        np.testing.assert_allclose(cam, want.numpy(), rtol=1e-4, atol=1e-6)
        assert cam.max() > 0


def test_gradcam_of_a_line_does_not_depend_on_its_batch(tiny_lines):
    """One backward pass serves the whole batch: each line gets the map it would get alone."""
    model, _ = _recognizer("ctc")
    batch, _ = _batch(tiny_lines)
    together = gradcam(model.encoder, ctc_score(model), batch.images, batch.widths).maps
    w = int(batch.widths[2])
    alone = gradcam(model.encoder, ctc_score(model), batch.images[2:3, :, :, :w],
                    batch.widths[2:3]).maps
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-3, atol=1e-6)


def test_gradcam_of_a_pretext_loss():
    """Any module with .encoder and forward(batch) -> (loss, metrics) will do; the map covers
    only each line's own columns."""

    class Pretext(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder(EncoderConfig("small", 32, lstm_layers=0))

        def forward(self, batch):  # more activation = lower loss
            frames, _ = self.encoder(batch.images, batch.widths)
            return -frames.sum(), {}

    torch.manual_seed(0)
    model = Pretext().eval()
    images = torch.rand(2, 1, 32, 64)
    cams = gradcam(model.encoder, pretext_score(model), images, torch.tensor([64, 40]))
    assert [c.shape for c in cams.maps] == [(32, 64), (32, 40)]
    assert all((c >= 0).all() and c.max() > 0 for c in cams.maps)


def test_rotation_pretext_maps_lie_on_the_line_it_saw(tiny_lines):
    """The rotation pretext turns some lines 180 degrees before the encoder sees them: each
    map comes with that line, which is the input or its 180-degree turn, and the same seed
    gives the same maps."""
    model = _pretext_model()
    batch, _ = _batch(tiny_lines, 4)
    batch.widths[1] = 90
    cams = gradcam(model.encoder, pretext_score(model), batch.images, batch.widths)
    turned = 0
    for i, (cam, line) in enumerate(zip(cams.maps, cams.lines, strict=True)):
        w = int(batch.widths[i])
        orig = batch.images[i, 0, :, :w].numpy()
        assert cam.shape == line.shape == (32, w) and (cam >= 0).all()
        turned += not np.allclose(line, orig, atol=1e-6)
        assert np.allclose(line, orig, atol=1e-6) or np.allclose(line, orig[::-1, ::-1],
                                                                 atol=1e-6)
    assert 0 < turned < 4  # seed 0 turns some lines and not others
    again = gradcam(model.encoder, pretext_score(model), batch.images, batch.widths)
    for a, b in zip(cams.maps, again.maps, strict=True):
        np.testing.assert_array_equal(a, b)


def test_attention_weights_cover_the_line(tiny_lines):
    model, _ = _recognizer("attention")
    batch, _ = _batch(tiny_lines, 2)
    ids, weights = attention_maps(model, batch.images, batch.widths)
    assert any(len(seq) for seq in ids)
    for seq, w, width in zip(ids, weights, batch.widths.tolist(), strict=True):
        assert w.shape == (len(seq), width)
        # each decoded character's attention is a distribution over the line's frames (sum 1),
        # each frame spread over the `wstride` pixel columns it stands for: no mass lost at the
        # line's end or put into its padding
        assert (w >= 0).all() and np.allclose(w.sum(1), model.encoder.wstride, rtol=0.02)


def test_attention_strip_layout():
    image = np.ones((32, 50))
    weights = np.zeros((3, 50))
    weights[[0, 1, 2], [5, 25, 45]] = 1.0
    strip = overlays.attention_strip(image, weights, ["a", " ", "b"], "gray", row_height=10,
                                     margin=20)
    assert strip.rgb.shape == (32 + 3 * 10, 20 + 50, 3)
    assert [lab.text for lab in strip.labels] == ["a", "␣", "b"]
    # row i is brightest (gray colormap: 1 -> white) where character i looked
    for i, col in enumerate((5, 25, 45)):
        row = strip.rgb[32 + 10 * i + 5, 20:, 0]
        assert row.argmax() == col and row[col] == 255


def test_overlay_keeps_the_image_size_and_rejects_a_mismatch():
    assert overlays.overlay(np.ones((32, 70)), np.random.rand(32, 70)).shape == (32, 70, 3)
    with pytest.raises(ValueError, match="differ in size"):
        overlays.overlay(np.ones((32, 70)), np.ones((32, 71)))
    with pytest.raises(ValueError, match="unknown colormap 'nope'"):
        HeatmapConfig(cmap="nope")


def test_names_are_safe_and_unique():
    assert safe_name("a01/a01-000u-00") == "a01_a01-000u-00"
    assert unique_names(["x/y", "x_y", "../z"]) == ["x_y", "x_y-2", "z"]


def test_write_heatmaps_for_two_checkpoints(tiny_lines, tmp_path):
    subjects = [load_subject(_save(tmp_path, "hyb"), "hybrid"),
                load_subject(_save(tmp_path, "ctc", "ctc", seed=1), "ctc")]
    _, samples = _batch(tiny_lines, 2)
    sheets = write_heatmaps(subjects, samples, tmp_path / "out", HeatmapConfig(row_height=10))
    width = Image.open(tiny_lines / "000.png").size[0]  # already 32 px high
    hyb = tmp_path / "out" / "hybrid"
    assert Image.open(hyb / "line_0.gradcam.png").size == (width, 32)
    assert Image.open(hyb / "line_0.fnorm.png").size == (width, 32)
    assert Image.open(hyb / "line_0.attention_all.png").size == (width, 32)
    text = dict(r.split("\t") for r in (hyb / "predictions.tsv").read_text().splitlines()[1:])
    n_chars = len(text["line_0"])
    assert Image.open(hyb / "line_0.attention.png").size == (20 + width, 32 + 10 * n_chars)
    ctc = tmp_path / "out" / "ctc"
    assert (ctc / "line_1.gradcam.png").exists() and not (ctc / "line_1.attention.png").exists()
    assert [p.name for p in sheets] == ["sheet_gradcam.png", "sheet_fnorm.png",
                                        "sheet_attention.png"]
    for p in sheets:
        assert Image.open(p).format == "PNG"


def test_pretext_checkpoints(tiny_lines, tmp_path):
    """A pretext checkpoint gives Grad-CAM of its loss and feature norms; one whose heads
    cannot be rebuilt (no 'pretexts' entry) still gives feature norms from encoder_config."""
    model = _pretext_model()
    path = tmp_path / "pre" / "last.pt"
    checkpoint.save({"model": model.state_dict(), **checkpoint_meta(model)}, path)
    bare = tmp_path / "bare" / "last.pt"
    checkpoint.save({"model": model.state_dict(), "kind": "pretext", "method": "rotation",
                     "encoder_config": asdict(model.encoder.cfg)}, bare)
    subjects = [load_subject(path), load_subject(bare, "encoder only")]
    assert subjects[0].name == "rotation" and subjects[0].pretext is not None
    assert subjects[1].pretext is None
    _, samples = _batch(tiny_lines, 2)
    sheets = write_heatmaps(subjects, samples, tmp_path / "out")
    assert [p.name for p in sheets] == ["sheet_gradcam.png", "sheet_fnorm.png"]
    assert (tmp_path / "out" / "rotation" / "line_0.gradcam.png").exists()
    assert (tmp_path / "out" / "rotation" / "line_1.fnorm.png").exists()
    assert not (tmp_path / "out" / "encoder_only" / "line_0.gradcam.png").exists()
    assert (tmp_path / "out" / "encoder_only" / "line_0.fnorm.png").exists()
    assert not (tmp_path / "out" / "rotation" / "predictions.tsv").exists()


def test_cli_end_to_end(tiny_lines, tmp_path):
    a, b = _save(tmp_path, "a"), _save(tmp_path, "b", "ctc")
    folder = tmp_path / "imgs" / "sub"
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f"{i}.png").write_bytes((tiny_lines / f"{i:03d}.png").read_bytes())
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "htr_ssl.cli.heatmaps", f"checkpoints=[{a},{b}]",
         "names=[hybrid,ctc]", f"inputs=[{tmp_path / 'imgs'}]", "out=hm", "cmap=inferno"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hm" / "hybrid" / "sub_0.attention.png").exists()
    assert (tmp_path / "hm" / "ctc" / "sub_1.gradcam.png").exists()
    assert (tmp_path / "hm" / "sheet_gradcam.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "hm", "imgs"]


def test_contact_sheet_layout():
    """Rows x columns of cells scaled to one height, the widest setting the cell width."""
    a = np.zeros((32, 100, 3), np.uint8)
    b = np.zeros((64, 60, 3), np.uint8)  # scaled to 32 x 30
    sheet = overlays.contact_sheet([[a, b], [None, a]], ["l1", "l2"], ["ckpt A", "ckpt B"],
                                   [["x", "y"], ["", "z"]], cell_height=32, header=20,
                                   label_width=50, caption=10, gap=4)
    assert sheet.rgb.shape == (20 + 2 * (32 + 10 + 4), 50 + 2 * (100 + 4), 3)
    texts = [lab.text for lab in sheet.labels]
    assert {"ckpt A", "ckpt B", "l1", "l2", "n/a", "x", "y", "z"} == set(texts)
    assert (sheet.rgb[20:52, 50 + 104: 50 + 104 + 30] == 0).all()  # b, scaled, in row 1 col 2


def test_head_without_that_decoder_is_a_clear_error(tiny_lines, tmp_path):
    subject = load_subject(_save(tmp_path, "c", "ctc"), "ctc model")
    _, samples = _batch(tiny_lines, 1)
    with pytest.raises(ValueError, match="'ctc model' has no attention decoder"):
        write_heatmaps([subject], samples, tmp_path / "out", HeatmapConfig(head="attention"))
