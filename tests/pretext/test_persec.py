"""PerSec: both levels learn, neither leaks its answer before training, options are checked."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.losses.masked import candidate_logits, candidate_top1, masked_infonce
from htr_ssl.pretext.masked import contrast_masked
from htr_ssl.pretext.persec import PerSec, PerSecConfig
from htr_ssl.pretext.quantizer import annealed_tau

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)


def test_encoder_context_is_the_rest_of_forward(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER).eval()
    batch = to_batch(lines[:4])
    with torch.no_grad():
        frames, lengths = encoder(batch.images, batch.widths, False)
        full, _ = encoder(batch.images, batch.widths, True)
        torch.testing.assert_close(encoder.context(frames, lengths), full)


@pytest.mark.parametrize("quantize", [False, True])
def test_both_levels_are_at_chance_untrained_and_their_losses_fall(lines, quantize):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(distractors=9, span=3, quantize=quantize, codes=32), encoder)
    with torch.no_grad():
        accs = []
        for seed in range(3):
            torch.manual_seed(seed)
            _, m = pretext(encoder, to_batch(lines[16 * seed:16 * seed + 16]))
            accs.append((float(m["acc"]), float(m["stroke_acc"])))
    assert float(m["chance"]) == pytest.approx(10.0)
    for level in range(2):
        assert sum(a[level] for a in accs) / len(accs) < 10.0 + 4.0, accs
    opt = torch.optim.AdamW([*encoder.parameters(), *pretext.parameters()], lr=2e-3)
    batch = to_batch(lines[:16])
    losses = []
    for _ in range(20 if quantize else 10):  # the quantizer has its codes to learn as well
        torch.manual_seed(1)  # same masks and distractors every step
        total, m = pretext(encoder, batch)
        losses.append((float(m["stroke_loss"]), float(m["semantic_loss"])))
        opt.zero_grad()
        total.backward()
        opt.step()
    first, last = losses[0], losses[-1]
    assert last[0] < first[0] - 0.2 and last[1] < first[1] - 0.2, losses


@pytest.mark.parametrize("quantize", [False, True])
def test_the_mask_embedding_and_both_heads_get_gradients(lines, quantize):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(quantize=quantize, codes=16), encoder)
    loss, _ = pretext(encoder, to_batch(lines[:4]))
    loss.backward()
    for name, p in pretext.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_a_level_weighted_zero_is_left_out(lines):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    pretext = PerSec(PerSecConfig(stroke_weight=0.0), encoder)
    torch.manual_seed(3)
    loss, m = pretext(encoder, to_batch(lines[:4]))
    assert float(loss.detach()) == pytest.approx(float(m["semantic_loss"]))


def test_a_single_masked_frame_has_nothing_to_be_told_from():
    q = torch.randn(1, 4, requires_grad=True)
    loss, acc, candidates = contrast_masked(q, torch.randn(1, 4), torch.zeros(1, dtype=torch.long),
                                            20, 0.1)
    assert float(loss.detach()) == 0.0 and float(acc) == 100.0 and candidates == 1
    loss.backward()


def test_quantized_targets_are_codebook_entries_and_the_temperature_anneals():
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    cfg = PerSecConfig(quantize=True, codebooks=2, codes=8, dim=6, tau_steps=10)
    pretext = PerSec(cfg, encoder)
    book = pretext.semantic_target.codebook  # (2 codebooks, 8 codes, 3)
    for mode in (pretext.train, pretext.eval):  # a Gumbel sample, then the argmax
        mode()
        metrics = {}
        t, diversity = pretext.targets(pretext.semantic_target, torch.randn(5, 64), metrics,
                                       "semantic")
        for g in range(2):
            part = t[:, 3 * g:3 * g + 3]
            assert bool((part[:, None] == book[g][None]).all(-1).any(1).all())
        assert 0.0 <= float(diversity.detach()) <= 7 / 8
        assert float(metrics["semantic_perplexity"]) >= 1.0
    assert annealed_tau(2.0, 0.5, 0, 10) == 2.0 and annealed_tau(2.0, 0.5, 10, 10) == 0.5
    assert annealed_tau(2.0, 0.5, 5, 10) == pytest.approx(1.0)  # geometric: sqrt(2 x 0.5)
    for _ in range(3):
        pretext.after_step(encoder)
    assert int(pretext.step) == 3


def test_distractors_equal_to_the_positive_are_left_out():
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # rows 0 and 1: one code
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    distractors = torch.tensor([[1, 2], [0, 2], [0, 1]])
    plain = candidate_logits(q, targets, distractors, 1.0)
    assert float(candidate_top1(plain)) == pytest.approx(100 / 3)  # rows 0, 1 tie: misses
    kept = candidate_logits(q, targets, distractors, 1.0, exclude_equal=True)
    assert kept[0, 1] == float("-inf") and kept[1, 1] == float("-inf")
    assert torch.isfinite(kept[2]).all()
    assert float(candidate_top1(kept)) == 100.0
    loss = masked_infonce(q, targets, distractors, 1.0, exclude_equal=True)
    assert torch.isfinite(loss)


def test_needs_a_bilstm():
    encoder = build_encoder(EncoderConfig("small", 32, lstm_layers=0))
    with pytest.raises(ValueError, match="lstm_layers"):
        PerSec(PerSecConfig(), encoder)


@pytest.mark.parametrize("values, option", [
    ({"ratio": 1.0}, "ratio"), ({"span": 0}, "span"), ({"distractors": 0}, "distractors"),
    ({"hidden": 0}, "hidden"), ({"dim": 0}, "dim"), ({"window": 4}, "window"),
    ({"temperature": 0.0}, "temperature"), ({"stroke_weight": -1.0}, "stroke_weight"),
    ({"stroke_weight": 0.0, "semantic_weight": 0.0}, "semantic_weight"),
    ({"codes": 0}, "codes"), ({"quantize": True, "dim": 255}, "codebooks"),
    ({"tau_end": 0.0}, "tau_start and tau_end"), ({"diversity_weight": -1.0}, "tau_start")])
def test_bad_options_name_the_option(values, option):
    with pytest.raises(ValueError, match=rf"pretext\.persec\.{option}"):
        PerSecConfig(**values)
