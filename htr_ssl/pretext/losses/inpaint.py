"""Masked pixel reconstruction (MAE, He et al. 2022): mean squared error on masked pixels only."""

from __future__ import annotations

import torch


def normalize_patches(patches: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Each patch (last dim) to zero mean and unit variance, MAE's `norm_pix_loss` target.

    `eps` is added to the variance: a blank patch of paper (variance about 0) stays about 0
    instead of blowing its scanner noise up to unit variance (MAE's 1e-6 suits natural images,
    which are rarely flat; text lines are mostly paper)."""
    mean = patches.mean(-1, keepdim=True)
    var = patches.var(-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + eps).sqrt()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (pred - target)^2 over the elements where `mask` is true, in fp32.

    pred, target: any shape; mask: bool, broadcastable to them. No masked element: 0 (with a
    gradient path, so a step with nothing masked is still a valid step)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape: {pred.shape}, {target.shape}")
    w = mask.expand_as(pred).float()
    err = (pred.float() - target.detach().float()).pow(2) * w
    return err.sum() / w.sum().clamp(min=1)
