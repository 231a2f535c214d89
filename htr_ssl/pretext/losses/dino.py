"""DINO's self-distillation loss (Caron et al. 2021): the student matches the teacher's
centered, sharpened distribution over `out_dim` prototypes, across different views."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_probs(teacher: torch.Tensor, center: torch.Tensor, temperature: float
                  ) -> torch.Tensor:
    """softmax((teacher - center) / temperature), detached: centering keeps one prototype from
    winning every line, the low temperature (sharpening) keeps the output from going uniform;
    together they avoid both collapses."""
    return F.softmax((teacher.detach().float() - center.float()) / temperature, dim=-1)


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Mean cross entropy H(teacher view i, student view j) over all pairs i != j.

    student: (Vs, N, K) logits, the first Vt views being the same (global) views the teacher
    saw; teacher: (Vt, N, K) logits; center: (K,). Temperatures are DINO's defaults."""
    if student.dim() != 3 or teacher.dim() != 3 or student.shape[1:] != teacher.shape[1:] \
            or student.shape[0] < teacher.shape[0]:
        raise ValueError(f"dino needs student (Vs, N, K) and teacher (Vt <= Vs, N, K) logits: "
                         f"{student.shape}, {teacher.shape}")
    t = teacher_probs(teacher, center, teacher_temp)
    s = F.log_softmax(student.float() / student_temp, dim=-1)
    terms = [-(t[i] * s[j]).sum(-1).mean() for i in range(len(t)) for j in range(len(s))
             if i != j]
    if not terms:
        raise ValueError("dino needs at least two views")
    return torch.stack(terms).mean()
