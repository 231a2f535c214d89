"""Decoder heads and losses: attention masking, CTC skip logic, hybrid loss, beam search."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.attention import AttentionDecoder, attention_loss
from htr_ssl.models.ctc import CTCHead, ctc_loss, ctc_min_frames
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import (
    DecoderConfig,
    RecognizerConfig,
    build_recognizer,
    recognizer_config_dict,
    recognizer_config_from_dict,
)

N_CHARS = 6
SOS, EOS, V = N_CHARS + 1, N_CHARS + 2, N_CHARS + 3


def _decoder() -> AttentionDecoder:
    torch.manual_seed(0)
    return AttentionDecoder(enc_dim=16, n_classes=V, sos=SOS, eos=EOS, hidden=32, emb=8,
                            max_len=12).eval()


def test_attention_weights_sum_to_one_and_respect_lengths() -> None:
    dec = _decoder()
    frames = torch.randn(3, 10, 16)
    lengths = torch.tensor([10, 6, 1])
    targets = torch.tensor([[1, 2, 3], [4, 5, 0], [0, 0, 0]])
    target_lengths = torch.tensor([3, 2, 0])
    logits, weights = dec(frames, lengths, targets, target_lengths)
    assert logits.shape == (3, 4, V)
    assert weights.shape == (3, 4, 10)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(weights[i, :, n:] == 0)
    loss = attention_loss(logits, targets, target_lengths, EOS)
    assert torch.isfinite(loss)


def test_attention_loss_targets_are_text_then_eos() -> None:
    """Logits that put all mass on text + <eos> give (almost) zero loss."""
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    target_lengths = torch.tensor([2, 1])
    gold = torch.tensor([[1, 2, EOS, 0], [3, EOS, 0, 0]])
    logits = torch.nn.functional.one_hot(gold, V).float() * 50
    assert attention_loss(logits, targets, target_lengths, EOS) < 1e-6


def test_beam_search_with_one_beam_equals_greedy() -> None:
    dec = _decoder()
    frames = torch.randn(3, 9, 16)
    lengths = torch.tensor([9, 5, 2])
    greedy = dec.greedy(frames, lengths)
    beam = dec.beam_search(frames, lengths, beam=1)
    assert beam.ids == greedy.ids
    for g, b, n in zip(greedy.weights, beam.weights, lengths.tolist(), strict=True):
        assert g.shape == b.shape and g.shape[-1] == n
        torch.testing.assert_close(g, b, atol=1e-5, rtol=1e-4)
    for ids, g, b in zip(greedy.ids, greedy.probs, beam.probs, strict=True):
        assert len(g) in (len(ids), len(ids) + 1)  # + <eos> when the line ended
        assert all(0 < p <= 1 for p in g)
        torch.testing.assert_close(torch.tensor(g), torch.tensor(b), atol=1e-5, rtol=1e-4)
    wide = dec.beam_search(frames, lengths, beam=4)
    assert all(len(ids) <= dec.max_len for ids in wide.ids)


def test_ctc_min_frames_counts_repeats() -> None:
    targets = torch.tensor([[1, 1, 2, 2, 2], [1, 2, 3, 0, 0], [3, 3, 0, 0, 0]])
    lengths = torch.tensor([5, 3, 1])  # the last one's padded repeat must not count
    assert ctc_min_frames(targets, lengths).tolist() == [8, 3, 1]


def test_ctc_loss_skips_too_short_samples() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, V - 2, requires_grad=True)
    lengths = torch.tensor([5, 2, 4])
    targets = torch.tensor([[1, 2, 3], [1, 2, 3], [1, 1, 1]])  # needs 3, 3 and 5 frames
    target_lengths = torch.tensor([3, 3, 3])
    loss, valid = ctc_loss(logits, lengths, targets, target_lengths)
    assert valid.tolist() == [True, False, False]
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[1:] == 0)
    alone, _ = ctc_loss(logits[:1], lengths[:1], targets[:1], target_lengths[:1])
    torch.testing.assert_close(loss, alone)


def test_ctc_loss_with_no_valid_sample_is_zero_not_nan() -> None:
    logits = torch.randn(2, 2, 5, requires_grad=True)
    loss, valid = ctc_loss(logits, torch.tensor([2, 2]), torch.tensor([[1, 2, 3]] * 2),
                           torch.tensor([3, 3]))
    assert not valid.any() and loss.item() == 0.0
    loss.backward()


def test_ctc_loss_in_bf16_autocast_is_fp32() -> None:
    head = CTCHead(16, V - 2)
    frames = torch.randn(2, 8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(frames)
        loss, _ = ctc_loss(logits, torch.tensor([8, 8]), torch.tensor([[1, 2], [3, 3]]),
                           torch.tensor([2, 2]))
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    images = torch.rand(2, 1, 32, 64)
    widths = torch.tensor([64, 9])  # the second line has 3 frames for 4 characters
    targets = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]])
    return images, widths, targets, torch.tensor([4, 4])


def test_hybrid_loss_is_weighted_sum(batch: tuple[torch.Tensor, ...]) -> None:
    alphabet = Alphabet(tuple("abcdef"))
    cfg = RecognizerConfig(EncoderConfig("small", 32, lstm_layers=1, dropout=0.0),
                           DecoderConfig("hybrid", hybrid_ctc_weight=0.3, attn_hidden=32,
                                         attn_emb=8, max_len=8, dropout=0.0))
    torch.manual_seed(0)
    model = build_recognizer(cfg, alphabet).eval()
    loss, metrics = model.loss(*batch)
    assert metrics["skipped"] == 1
    expected = 0.3 * metrics["ctc_loss"] + 0.7 * metrics["attn_loss"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    for mode in ("ctc", "attention"):
        pred = model.predict(batch[0], batch[1], mode=mode)
        assert len(pred.ids) == 2
    pred = model.predict(batch[0], batch[1], mode="attention", beam=3)
    assert pred.attention is not None
    assert all(w.shape[0] == len(ids) for w, ids in zip(pred.attention, pred.ids, strict=True))


@pytest.mark.parametrize("decoder", ["ctc", "attention"])
def test_single_head_recognizers(decoder: str, batch: tuple[torch.Tensor, ...]) -> None:
    cfg = RecognizerConfig(EncoderConfig("small", 32, lstm_layers=1),
                           DecoderConfig(decoder, attn_hidden=32, attn_emb=8, max_len=8))
    model = build_recognizer(cfg, 6)
    loss, metrics = model.loss(*batch)
    assert torch.isfinite(loss) and "skipped" in metrics
    loss.backward()  # the one head trains, and through it the encoder
    head = model.ctc if decoder == "ctc" else model.attention
    assert head is not None and (model.attention if decoder == "ctc" else model.ctc) is None
    for part in (head, model.encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    pred = model.predict(batch[0], batch[1], mode=decoder)
    assert len(pred.ids) == 2 and all(0 < i <= 6 for ids in pred.ids for i in ids)
    other = "attention" if decoder == "ctc" else "ctc"
    with pytest.raises(ValueError, match=other):
        model.predict(batch[0], batch[1], mode=other)


def test_decoder_config_checks_its_kind_and_weight() -> None:
    with pytest.raises(ValueError, match="unknown decoder; use one of ctc, attention, hybrid"):
        DecoderConfig("transformer")
    with pytest.raises(ValueError, match=r"hybrid_ctc_weight=1\.5 must be between 0 and 1"):
        DecoderConfig("hybrid", hybrid_ctc_weight=1.5)


def test_saved_configs_read_in_the_flat_shape_and_the_nested_one() -> None:
    """Checkpoints older than DecoderConfig saved the decoder's kind as `decoder` and its
    options next to `encoder`; both shapes give the same RecognizerConfig."""
    cfg = RecognizerConfig(EncoderConfig("bp", 48, lstm_layers=1),
                           DecoderConfig("hybrid", hybrid_ctc_weight=0.3, attn_hidden=32,
                                         attn_emb=8, max_len=40, dropout=0.2))
    flat = {"encoder": asdict(cfg.encoder), "decoder": "hybrid", "hybrid_ctc_weight": 0.3,
            "attn_hidden": 32, "attn_emb": 8, "max_len": 40, "dropout": 0.2}
    assert recognizer_config_dict(flat) == asdict(cfg)
    assert recognizer_config_from_dict(flat) == cfg
    assert recognizer_config_from_dict(asdict(cfg)) == cfg
    with pytest.raises(ValueError, match=r"model_config\.decoder\.max_len='long'"):
        recognizer_config_from_dict({**flat, "max_len": "long"})
