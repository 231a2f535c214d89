"""InfoNCE over candidates: learns, has the right values, and its top-1 counts ties as misses."""

from __future__ import annotations

import math

import pytest
import torch

from htr_ssl.pretext.losses.masked import (
    candidate_infonce,
    candidate_logits,
    candidate_top1,
    masked_infonce,
)


def distractors(n: int, k: int) -> torch.Tensor:
    """Row i: the k frames after i (cyclically), never i itself."""
    return (torch.arange(n)[:, None] + torch.arange(1, k + 1)[None, :]) % n


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    q = torch.randn(32, 16, requires_grad=True)
    t = torch.randn(32, 16)
    opt = torch.optim.Adam([q], lr=0.1)
    first = None
    for _ in range(20):
        loss = masked_infonce(q, t, distractors(32, 5), temperature=0.5)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_values():
    t = torch.eye(8)
    d = distractors(8, 3)
    # queries equal to their targets, distractors orthogonal: logits (1/T, 0, 0, 0)
    expected = -math.log(math.exp(10) / (math.exp(10) + 3))
    assert float(masked_infonce(t, t, d, 0.1)) == pytest.approx(expected, abs=1e-6)
    # a query orthogonal to every candidate cannot choose: log(K + 1)
    q = torch.zeros(8, 9)
    q[:, 8] = 1
    t9 = torch.cat([t, torch.zeros(8, 1)], 1)
    assert float(masked_infonce(q, t9, d, 0.1)) == pytest.approx(math.log(4), rel=1e-5)
    logits = candidate_logits(t, t, d, 0.1)
    assert logits.shape == (8, 4) and float(candidate_top1(logits)) == 100.0
    assert float(candidate_infonce(logits)) == pytest.approx(expected, abs=1e-6)  # from logits


def test_top1_is_at_chance_for_unrelated_queries_and_counts_ties_as_misses():
    torch.manual_seed(0)
    n, k = 4000, 9
    q, t = torch.randn(n, 32), torch.randn(n, 32)
    acc = float(candidate_top1(candidate_logits(q, t, distractors(n, k), 1.0)))
    assert abs(acc - 100 / (k + 1)) < 2.0
    same = torch.ones(6, 4)  # all candidates identical: argmax would say "0, correct"
    assert float(candidate_top1(candidate_logits(same, same, distractors(6, 2), 1.0))) == 0.0
