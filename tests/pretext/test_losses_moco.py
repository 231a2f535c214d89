"""MoCo's InfoNCE: the value worked out by hand, the queue's part in it, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.moco import (
    logits_infonce,
    logits_top1,
    moco_infonce,
    moco_logits,
    moco_top1,
)

Q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # not normalized: the loss normalizes
K = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
QUEUE = torch.tensor([[-1.0, 0.0]])


def test_matches_the_hand_computed_value():
    """Cosines, c = 1/sqrt(2): q1 -> k1 c (pos), k2 0, queue -1; q2 -> k1 c, k2 1 (pos),
    queue 0. Loss_i = -pos/tau + log(sum exp(sim/tau))."""
    tau, c = 0.5, 1 / math.sqrt(2)
    l1 = -c / tau + math.log(math.exp(c / tau) + 1 + math.exp(-1 / tau))
    l2 = -1 / tau + math.log(math.exp(c / tau) + math.exp(1 / tau) + 1)
    assert float(moco_infonce(Q, K, QUEUE, tau)) == pytest.approx((l1 + l2) / 2, rel=1e-6)
    # an empty queue leaves the in-batch keys only
    e1 = -c / tau + math.log(math.exp(c / tau) + 1)
    e2 = -1 / tau + math.log(math.exp(c / tau) + math.exp(1 / tau))
    assert float(moco_infonce(Q, K, QUEUE[:0], tau)) == pytest.approx((e1 + e2) / 2, rel=1e-6)


def test_logits_layout_and_top1():
    logits = moco_logits(Q, K, QUEUE, 1.0)
    assert logits.shape == (2, 3)
    assert float(logits[0, 2]) == pytest.approx(-1.0)
    assert float(moco_top1(Q, K, QUEUE)) == 100.0
    # a queue row equal to q1 beats its key: a miss
    assert float(moco_top1(Q, K, torch.tensor([[1.0, 0.0]]))) == 50.0
    # from one set of logits (as the pretext computes them): the same loss and accuracies,
    # and the batch's keys alone in the first N columns
    hard = torch.tensor([[1.0, 0.0]])
    scaled = moco_logits(Q, K, hard, 0.2)
    assert float(logits_infonce(scaled)) == pytest.approx(float(moco_infonce(Q, K, hard, 0.2)))
    assert float(logits_top1(scaled)) == 50.0
    assert float(logits_top1(scaled[:, :2])) == float(moco_top1(Q, K, hard[:0])) == 100.0


def test_keys_and_queue_get_no_gradient():
    q = torch.randn(4, 8, requires_grad=True)
    k = torch.randn(4, 8, requires_grad=True)
    queue = torch.randn(5, 8, requires_grad=True)
    moco_infonce(q, k, queue).backward()
    assert q.grad is not None and k.grad is None and queue.grad is None


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    q = torch.randn(16, 32, requires_grad=True)
    k, queue = torch.randn(16, 32), torch.randn(256, 32)
    assert_descends(lambda: moco_infonce(q, k, queue), [q], lr=0.1)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="queue"):
        moco_infonce(torch.randn(4, 8), torch.randn(4, 8), torch.randn(3, 9))
