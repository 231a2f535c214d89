"""Reading images with a recognizer: width-sorted batches give each image the text it gets
alone, results come back in input order, and bf16 really runs the network in bf16."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.sample import Sample
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber, read_in_input_order
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

ALPHABET = Alphabet(tuple("abcdefghij"))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_recognizer(RecognizerConfig(EncoderConfig("small", 32), DecoderConfig("ctc")),
                            len(ALPHABET.chars)).eval()


class Fingerprint:
    """Stands in for a Transcriber: each image's "text" is its true width and the sum of its
    pixels within it, so any mix-up of images, widths or padding shows."""

    def __init__(self) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.batches: list[list[int]] = []

    def __call__(self, images: torch.Tensor, widths: torch.Tensor) -> list[str]:
        self.batches.append(widths.tolist())
        return [f"{w}:{float(img[..., :w].sum()):.2f}"
                for img, w in zip(images, widths.tolist(), strict=True)]


def _images(folder: Path, widths: list[int]) -> list[Sample]:
    samples = []
    for i, w in enumerate(widths):
        path = folder / f"{i:02d}.png"
        img = np.full((32, w), 255, np.uint8)
        cv2.putText(img, "abcdefghij"[i:] * 3, (2, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
        cv2.imwrite(str(path), img)
        samples.append(Sample(str(path), path, ""))
    return samples


def test_reading_in_width_sorted_windows_keeps_input_order_and_texts(tmp_path, caplog):
    widths = [300, 40, 180, 90, 260, 64, 120]
    samples = _images(tmp_path, widths)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    samples.insert(3, Sample(str(broken), broken, ""))
    readable = [s for s in samples if s.image_path != broken]
    alone = dict(pair for s in readable for pair in read_in_input_order(Fingerprint(), [s], 32))
    reader = Fingerprint()
    got = list(read_in_input_order(reader, samples, 32, batch_size=3, window=4))
    assert [sid for sid, _ in got] == [s.id for s in readable]
    assert dict(got) == alone
    assert "broken.png" in caplog.text
    # windows [300, 40, 180, broken] and [90, 260, 64, 120] (images 32 px high: widths kept),
    # each cut into width-sorted batches; the broken image is dropped from its batch
    assert reader.batches == [[40, 180], [300], [64, 90, 120], [260]]


def test_a_real_recognizer_reads_the_same_alone_or_batched(tmp_path):
    samples = _images(tmp_path, [300, 40, 180, 90])
    transcriber = Transcriber(_model(), ALPHABET, DecodeConfig())
    alone = [pair for s in samples for pair in read_in_input_order(transcriber, [s], 32)]
    assert list(read_in_input_order(transcriber, samples, 32, batch_size=4)) == alone


def test_bf16_runs_the_network_in_bf16_and_bad_precision_is_named():
    model = _model()
    dtypes = []
    model.ctc.proj.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    images, widths = torch.rand(2, 1, 32, 96), torch.tensor([96, 64])
    for precision in ("fp32", "bf16"):
        texts = Transcriber(model, ALPHABET, DecodeConfig(), precision)(images, widths)
        assert len(texts) == 2
    assert dtypes == [torch.float32, torch.bfloat16]
    with pytest.raises(ValueError, match="precision='fp16'; use bf16 or fp32"):
        Transcriber(model, ALPHABET, DecodeConfig(), "fp16")
