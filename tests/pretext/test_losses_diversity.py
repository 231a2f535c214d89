"""wav2vec 2.0's codebook diversity: the values worked out by hand, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.diversity import codebook_diversity, codebook_perplexity


def test_matches_the_hand_computed_value():
    # one codebook of 2 codes; 4 inputs choose code 0 with 1, 1, 1, 0: average (0.75, 0.25)
    probs = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    perplexity = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))  # 1.7548
    assert float(codebook_perplexity(probs)[0]) == pytest.approx(perplexity, abs=1e-5)
    assert float(codebook_diversity(probs)) == pytest.approx((2 - perplexity) / 2, abs=1e-5)


def test_all_codes_used_equally_is_zero_one_code_is_the_maximum():
    uniform = torch.full((5, 2, 4), 0.25)  # 2 codebooks of 4 codes
    assert float(codebook_diversity(uniform)) == pytest.approx(0.0, abs=1e-5)
    one = torch.zeros(5, 2, 4)
    one[..., 1] = 1.0
    assert float(codebook_diversity(one)) == pytest.approx((8 - 2) / 8, abs=1e-5)


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    logits = (torch.randn(32, 2, 8) * 3 + torch.arange(8.0) * 2).requires_grad_()  # skewed
    assert_descends(lambda: codebook_diversity(logits.softmax(-1)), [logits], lr=0.3)


def test_needs_inputs_x_codebooks_x_codes():
    with pytest.raises(ValueError, match="groups, codes"):
        codebook_perplexity(torch.rand(4, 8))
