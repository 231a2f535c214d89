"""Inpainting: paint over spans of image columns and reconstruct their pixels (MAE-style).

The pixel counterpart of `masked` (which predicts the encoder's features of a hidden span):
spans of whole frames are masked exactly as there (masked.span_mask, painted with `fill`,
inside each line's width only), the encoder reads the masked line, and a light decoder (an
MLP on each contextual frame) outputs the frame's pixel patch, all `height x stride` pixels
of its columns. The loss is the MSE on the masked patches only (MAE: reconstructing visible
pixels teaches nothing), and only on columns inside the line (the last frame may reach into
the padding). Targets are normalized per patch (`norm_pix`, MAE's better variant): the
decoder must draw the strokes' shape, not the paper's grey level.

Why a light decoder: the encoder should hold the content, so the decoder is too small to
reconstruct on its own (MAE's finding). The BiLSTM gives each masked frame the context of both
sides; a span of several frames cannot be filled by copying a neighbour column.

Metrics: `acc` = % of masked frames holding ink whose reconstruction is nearer (squared
error) to its own patch than to `distractors` other masked ink patches (of its line first):
chance 100 / (distractors + 1). Blank patches are left out of it, since one blank patch is as
near as another. `mse` = the loss; `masked` = % of valid frames masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance
from htr_ssl.pretext.losses.inpaint import masked_mse, normalize_patches
from htr_ssl.pretext.masked import column_mask, sample_distractors, span_mask


@dataclass
class InpaintConfig:
    ratio: float = 0.5      # share of each line's frames to mask (spans may overlap)
    span: int = 5           # frames per masked span
    fill: float = 0.5       # pixel value painted on masked columns (0 ink .. 1 paper)
    hidden: int = 256       # decoder MLP hidden width
    norm_pix: bool = True   # targets normalized per patch (MAE's norm_pix_loss)
    distractors: int = 20   # other masked patches the `acc` metric compares against

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ValueError(f"pretext.inpaint.ratio={self.ratio} must be in (0, 1)")
        for key in ("span", "hidden", "distractors"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.inpaint.{key}={getattr(self, key)} must be >= 1")
        if not 0.0 <= self.fill <= 1.0:
            raise ValueError(f"pretext.inpaint.fill={self.fill} must be in [0, 1]")


def frame_patches(images: torch.Tensor, frames: int, wstride: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, frames, H * wstride): the pixels under each frame, column-major
    per frame; columns past W (the last frame's rest) are white paper."""
    pad = frames * wstride - images.shape[-1]
    if pad > 0:
        images = nn.functional.pad(images, (0, pad), value=1.0)
    x = images[:, 0, :, : frames * wstride]  # (B, H, T * s)
    b = x.shape[0]
    return x.unflatten(-1, (frames, wstride)).permute(0, 2, 3, 1).reshape(b, frames, -1)


class Inpaint(Pretext):
    def __init__(self, cfg: InpaintConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        patch = encoder.cfg.height * encoder.wstride
        self.decoder = nn.Sequential(nn.Linear(encoder.dim(True), cfg.hidden), nn.GELU(),
                                     nn.Linear(cfg.hidden, patch))

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg, s = self.cfg, encoder.wstride
        images, widths = batch.images, batch.widths.to(batch.images.device)
        n_frames = encoder.frame_lengths(widths)
        t = -(-images.shape[-1] // s)
        frame_mask = span_mask(n_frames, t, cfg.ratio, cfg.span)
        cols = column_mask(frame_mask, widths, images.shape[-1], s)
        m = cols[:, None, None, :].to(images.dtype)
        frames, _ = encoder(images * (1 - m) + cfg.fill * m, widths, True)
        pred = self.decoder(frames[:, :t])  # (B, T, H * s)
        target = frame_patches(images, t, s)
        if cfg.norm_pix:
            target = normalize_patches(target)
        # pixels that count: masked frames, columns inside the line
        inside = (torch.arange(t * s, device=images.device)[None, :] < widths[:, None])
        inside = inside.unflatten(1, (t, s))[..., None, :].expand(-1, -1, images.shape[-2], -1)
        inside = inside.permute(0, 1, 3, 2).reshape(len(images), t, -1)
        weight = inside & frame_mask[..., None]
        loss = masked_mse(pred, target, weight)
        metrics = {"mse": loss.detach(), "masked": frame_mask.sum() / n_frames.sum() * 100}
        # the metric: masked frames with ink (a blank patch matches every other blank one)
        raw = frame_patches(images, t, s)
        ink = frame_mask & (raw.masked_fill(~inside, 1.0).amin(-1) < 0.5)
        rows = ink.nonzero(as_tuple=True)
        k = min(cfg.distractors, len(rows[0]) - 1)
        metrics["chance"] = chance(k + 1, loss)
        if k < 1:
            metrics["acc"] = torch.tensor(100.0, device=loss.device)
            return loss, metrics
        with torch.no_grad():
            p, tg, w = pred[rows].float(), target[rows].float(), weight[rows].float()
            others = sample_distractors(rows[0], k)
            idx = torch.cat([torch.arange(len(p), device=p.device)[:, None], others], dim=1)
            err = ((p[:, None] - tg[idx]).pow(2) * w[:, None]).sum(-1)  # (N, 1 + k)
            metrics["acc"] = (err[:, 0] < err[:, 1:].amin(1)).float().mean() * 100
        return loss, metrics
