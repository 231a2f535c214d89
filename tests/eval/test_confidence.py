"""Confidences: what the numbers are on hand-made posteriors, and that on a briefly trained
model they rank the lines it read right above the ones it read wrong, for every decoder."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.eval.confidence import (
    Reading,
    attention_confidences,
    auroc,
    ctc_reading,
    ctc_sequence_confidence,
    geometric_mean,
)
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

LETTERS = "abcdefgh"
ALPHABET = Alphabet(tuple(" " + LETTERS))


def _posteriors(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows).log()


def test_ctc_line_confidence_is_the_sequence_probability_per_character():
    # blank, a, b: the frames read "a", blank, "b"; P("ab") sums every alignment of it
    lp = _posteriors([[0.1, 0.9, 0.0], [0.9, 0.05, 0.05], [0.2, 0.0, 0.8]])
    paths = {"a-b": 0.9 * 0.9 * 0.8, "aab": 0.9 * 0.05 * 0.8, "abb": 0.9 * 0.05 * 0.8,
             "-ab": 0.1 * 0.05 * 0.8, "ab-": 0.9 * 0.05 * 0.2}
    paths = sum(paths.values())
    assert ctc_sequence_confidence(lp, [1, 2]) == pytest.approx(math.sqrt(paths), rel=1e-5)
    assert ctc_sequence_confidence(lp, []) == pytest.approx(0.1 * 0.9 * 0.2, rel=1e-5)
    assert ctc_sequence_confidence(lp[:1], [1, 1]) == 0.0  # "aa" needs 3 frames


def test_ctc_word_confidences_score_each_word_on_its_own_frames():
    # " " is id 1, a 2, b 3: the frames read "a", " ", "b"
    alphabet = Alphabet((" ", "a", "b"))
    sure, unsure = [0.01, 0.01, 0.97, 0.01], [0.1, 0.05, 0.05, 0.8]
    space = [0.01, 0.97, 0.01, 0.01]
    lp = _posteriors([sure, space, unsure])
    reading = ctc_reading(lp, "a b", alphabet.encode("a b"))
    assert [w.text for w in reading.words] == ["a", "b"]
    assert reading.words[0].confidence == pytest.approx(0.97, rel=1e-4)
    assert reading.words[1].confidence == pytest.approx(0.8, rel=1e-4)
    assert reading.confidence == pytest.approx((0.97 * 0.97 * 0.8) ** (1 / 3), rel=1e-4)


def test_attention_confidences_count_the_end_of_line():
    chars, line = attention_confidences([0.9, 0.5, 0.8], n_chars=2)
    assert chars == [0.9, 0.5]
    assert line == pytest.approx((0.9 * 0.5 * 0.8) ** (1 / 3))
    reading = Reading.from_chars("ab  c", [0.9, 0.4, 1.0, 1.0, 0.5], line)
    assert [(w.text, round(w.confidence, 4)) for w in reading.words] == [("ab", 0.6), ("c", 0.5)]
    assert geometric_mean([]) == 1.0 and geometric_mean([0.0, 1.0]) == 0.0


def test_auroc():
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    with pytest.raises(ValueError, match="positive and one negative"):
        auroc([0.5], [True])


def _text(rng: np.random.Generator) -> str:
    return " ".join("".join(rng.choice(list(LETTERS), n)) for n in
                    (rng.integers(2, 5), rng.integers(1, 3)))


def _batch(texts: list[str], rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Printed lines in two fonts and sizes with pixel noise, 32 px high."""
    images = []
    for t in texts:
        font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)[rng.integers(2)]
        scale = rng.uniform(0.55, 0.75)
        (w, _), _ = cv2.getTextSize(t, font, scale, 1)
        img = np.full((32, w + 8), 255, np.uint8)
        cv2.putText(img, t, (4, 23), font, scale, 0, 1, cv2.LINE_AA)
        images.append(np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8))
    widths = torch.tensor([im.shape[1] for im in images])
    x = torch.ones(len(images), 1, 32, int(widths.max()))
    for i, im in enumerate(images):
        x[i, 0, :, : im.shape[1]] = torch.from_numpy(im) / 255.0
    lengths = torch.tensor([len(t) for t in texts])
    targets = torch.zeros(len(texts), int(lengths.max()), dtype=torch.long)
    for i, t in enumerate(texts):
        targets[i, : len(t)] = torch.tensor(ALPHABET.encode(t))
    return x, widths, targets, lengths


@pytest.fixture
def one_thread():
    """Small batches run faster on one thread, and far faster on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_confidence_ranks_right_lines_above_wrong_ones_on_held_out_lines(one_thread):
    """A hybrid model trained for a few hundred steps reads part of 96 unseen lines right;
    each decoder's confidence is measured when 25-85 % of the lines are right (a model that
    reads everything right or wrong leaves nothing to rank)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_recognizer(RecognizerConfig(
        EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=64, dropout=0.0),
        DecoderConfig("hybrid", attn_hidden=64, attn_emb=16, max_len=12, dropout=0.0)), ALPHABET)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    held_out = [_text(rng) for _ in range(96)]
    images, widths, _, _ = _batch(held_out, rng)
    beams = {"ctc": DecodeConfig("ctc", "beam", 4), "attention": DecodeConfig("attention",
                                                                            "beam", 3)}
    scores: dict[str, float] = {}
    for step in range(1, 401):
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = model.loss(*_batch([_text(rng) for _ in range(16)], rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 or step < 60:
            continue
        model.eval()
        for head, beam in beams.items():
            if f"{head} greedy" in scores:
                continue
            readings = Transcriber(model, ALPHABET, DecodeConfig(head)).read(images, widths)
            right = [r.text == t for r, t in zip(readings, held_out, strict=True)]
            if not 0.25 <= sum(right) / len(right) <= 0.85:
                continue
            scores[f"{head} greedy"] = auroc([r.confidence for r in readings], right)
            readings = Transcriber(model, ALPHABET, beam).read(images, widths)
            right = [r.text == t for r, t in zip(readings, held_out, strict=True)]
            scores[f"{head} beam"] = auroc([r.confidence for r in readings], right)
        if len(scores) == 2 * len(beams):
            break
    decoders = [f"{head} {method}" for head in beams for method in ("greedy", "beam")]
    assert set(scores) == set(decoders), f"some decoder never read 25-85 % right: {scores}"
    assert all(s >= 0.7 for s in scores.values()), scores
