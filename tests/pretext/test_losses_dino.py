"""DINO's loss: the value by hand, centering and sharpening, the teacher side detached."""

from __future__ import annotations

import math

import pytest
import torch
from descent import assert_descends

from htr_ssl.pretext.losses.dino import dino_loss, teacher_probs


def test_matches_the_hand_computed_value():
    """One line, K = 2, two views. Teacher logits t1 = (1, 0), t2 = (0, 0), center (0.5, 0),
    teacher temperature 1: p1 = softmax(0.5, 0), p2 = softmax(-0.5, 0). Student logits
    s1 = (0, 0) and s2 = (2, 0), temperature 1: log q1 = log(1/2) both; log q2 = (2, 0) - lse.
    Loss = mean of H(p1, q2) and H(p2, q1)."""
    student = torch.tensor([[[0.0, 0.0]], [[2.0, 0.0]]])
    teacher = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])
    center = torch.tensor([0.5, 0.0])
    a = 1 / (1 + math.exp(-0.5))  # p1[0]
    lse = math.log(math.exp(2) + 1)
    h12 = -(a * (2 - lse) + (1 - a) * (0 - lse))
    h21 = math.log(2)  # any distribution against a uniform student
    got = dino_loss(student, teacher, center, 1.0, 1.0)
    assert float(got) == pytest.approx((h12 + h21) / 2, rel=1e-6)


def test_centering_and_sharpening():
    t = torch.tensor([[3.0, 1.0, 1.0]])
    centered = teacher_probs(t, torch.tensor([2.0, 0.0, 0.0]), 1.0)
    assert torch.allclose(centered, torch.full((1, 3), 1 / 3))  # the center cancels the lead
    sharp = teacher_probs(t, torch.zeros(3), 0.04)
    assert float(sharp[0, 0]) > 0.999


def test_local_views_are_students_only_and_teacher_gets_no_gradient():
    student = torch.randn(4, 5, 8, requires_grad=True)  # 2 global + 2 local views
    teacher = torch.randn(2, 5, 8, requires_grad=True)
    dino_loss(student, teacher, torch.zeros(8)).backward()
    assert student.grad is not None and teacher.grad is None
    assert float(student.grad[2:].abs().sum()) > 0
    with pytest.raises(ValueError, match="Vt <= Vs"):
        dino_loss(teacher, student, torch.zeros(8))


def test_decreases_under_gradient_steps():
    torch.manual_seed(0)
    student = torch.randn(3, 8, 16, requires_grad=True)
    teacher = torch.randn(2, 8, 16)
    assert_descends(lambda: dino_loss(student, teacher, torch.zeros(16), 0.1, 0.04), [student],
                    lr=0.05)
