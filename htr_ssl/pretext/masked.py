"""Masked pretext: hide spans of image columns and recognize what was under them among distractors.

The wav2vec 2.0 recipe, as kraken's "lacuna" pretraining applies it to text lines, done on the
image: spans of whole frames (`span` frames = `span * encoder.wstride` pixel columns, aligned to
the encoder's frame grid, inside each line's true width) are painted over with `fill`; the
encoder reads the masked line and, for every masked frame, its contextual output (projected)
must pick that frame's true feature out of 1 + K candidates. The true features are the CNN
frames of the unmasked line, computed by the same encoder without gradient (stop-gradient
targets, so the task cannot be met by making the targets trivial; they are projected by a
trainable linear layer as wav2vec 2.0's are).

Why this variant rather than MAE-style pixel reconstruction: a pixel loss spends the model on
stroke width, blur and paper texture, which a recognizer throws away, while predicting the
encoder's own visual features asks for the content at the level the recognizer reads. Why CNN
targets and a contextual query: the BiLSTM output of the unmasked line would already encode the
context the query sees, so queries could match targets by their surroundings alone.
Distractors are other masked frames of the SAME line whenever the line has enough (frames of
other lines in the batch complete the set): across lines the handwriting style alone would
give the answer.

Padding is never masked and never a cue: spans are drawn inside each line's frame count and
painted only on columns left of its width. The CNN's receptive field (about 34 px for `small`)
reaches a little past a span's edge, so frames near the edge are easier: `span` should be a few
frames long.

Metrics: `acc` = % of masked frames whose true target scores strictly above all K distractors
(chance 100 / (K + 1), also reported as `chance`); `masked` = % of valid frames masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.models.ops import valid_mask
from htr_ssl.pretext.base import Metrics, Pretext, chance
from htr_ssl.pretext.losses.masked import candidate_infonce, candidate_logits, candidate_top1


@dataclass
class MaskedConfig:
    ratio: float = 0.5          # fraction of each line's frames to mask (spans may overlap)
    span: int = 5               # frames per masked span (span * wstride pixel columns)
    fill: float = 0.5           # pixel value painted on masked columns (0 ink .. 1 paper)
    learned_fill: bool = False  # learn the fill value (starting at `fill`)
    distractors: int = 20       # K candidates besides the true one
    temperature: float = 0.1    # softmax temperature over cosine similarities
    dim: int = 256              # size of the projected queries and targets

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ValueError(f"pretext.masked.ratio={self.ratio} must be in (0, 1)")
        for key in ("span", "distractors", "dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.masked.{key}={getattr(self, key)} must be >= 1")
        if not 0.0 <= self.fill <= 1.0:
            raise ValueError(f"pretext.masked.fill={self.fill} must be in [0, 1]")
        if self.temperature <= 0:
            raise ValueError(f"pretext.masked.temperature={self.temperature} must be > 0")


def span_mask(frame_lengths: torch.Tensor, frames: int, ratio: float, span: int) -> torch.Tensor:
    """(B, frames) bool: about `ratio` of each line's valid frames, in spans of `span` frames.

    Each line gets max(1, round(ratio * n / span)) spans with uniform starts in [0, n - span];
    overlaps make the masked share somewhat lower than `ratio`. Frames >= n are never masked.
    """
    device = frame_lengths.device
    n = frame_lengths.long().clamp(min=1)
    count = (ratio * n / span).round().long().clamp(min=1)  # spans per line
    room = (n - span).clamp(min=0) + 1  # number of possible starts
    starts = (torch.rand(len(n), int(count.max()), device=device) * room[:, None]).long()
    idx = starts[..., None] + torch.arange(span, device=device)  # (B, S, span)
    keep = valid_mask(count, starts.shape[1])[:, :, None] & (idx < n[:, None, None])
    hits = torch.zeros(len(n), frames + span, dtype=torch.long, device=device)
    hits.scatter_add_(1, idx.flatten(1), keep.flatten(1).long())
    return hits[:, :frames] > 0


def column_mask(frame_mask: torch.Tensor, widths: torch.Tensor, width: int, wstride: int
                ) -> torch.Tensor:
    """(B, width) bool: the pixel columns of the masked frames, left of each line's width."""
    cols = torch.arange(width, device=frame_mask.device)
    frame_of = (cols // wstride).clamp(max=frame_mask.shape[1] - 1)
    return frame_mask[:, frame_of] & (cols[None, :] < widths.to(cols.device)[:, None])


def sample_distractors(line_of: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """(N, k) indices of distinct other masked frames for each of N masked frames.

    Frames of the anchor's own line come first (random order), then frames of other lines,
    never the anchor itself. `k` must be < N. Rows are drawn in chunks to bound memory.
    """
    n = len(line_of)
    out = []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n), device=line_of.device)
        prio = torch.rand(len(rows), n, device=line_of.device)
        prio += (line_of[rows, None] != line_of[None, :]).float()  # other lines rank after
        prio[torch.arange(len(rows), device=rows.device), rows] = float("inf")
        out.append(prio.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


def contrast_masked(q: torch.Tensor, t: torch.Tensor, line_of: torch.Tensor, distractors: int,
                    temperature: float, exclude_equal: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """InfoNCE of N masked frames' queries q (N, D) against their true targets t (N, D), each
    among up to `distractors` other masked frames (`line_of`: each frame's line; same line
    first): (loss, `acc` = % whose true target scores strictly highest, candidates per query,
    for `chance`). A single masked frame has nothing to be told from: loss 0, acc 100.
    `exclude_equal`: distractors equal to the positive are left out (losses/masked.py)."""
    k = min(distractors, len(q) - 1)
    if k == 0:
        return q.sum() * 0.0, torch.tensor(100.0, device=q.device), 1
    idx = sample_distractors(line_of, k)
    logits = candidate_logits(q, t, idx, temperature, exclude_equal)  # once: loss and acc
    return candidate_infonce(logits), candidate_top1(logits), k + 1


class Masked(Pretext):
    def __init__(self, cfg: MaskedConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.query = nn.Linear(encoder.dim(True), cfg.dim)
        self.target = nn.Linear(encoder.dim(False), cfg.dim)
        fill = torch.tensor(float(cfg.fill))
        if cfg.learned_fill:
            self.fill = nn.Parameter(fill)
        else:
            self.register_buffer("fill", fill)

    def mask(self, images: torch.Tensor, widths: torch.Tensor, wstride: int,
             frame_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked images, frame mask (B, T)) with T = ceil(W / wstride), the encoder's T."""
        t = -(-images.shape[-1] // wstride)
        frames = span_mask(frame_lengths, t, self.cfg.ratio, self.cfg.span)
        cols = column_mask(frames, widths, images.shape[-1], wstride)
        m = cols[:, None, None, :].to(images.dtype)
        return images * (1 - m) + self.fill.to(images.dtype) * m, frames

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        images, widths = batch.images, batch.widths
        n_frames = encoder.frame_lengths(widths).to(images.device)
        masked, mask = self.mask(images, widths, encoder.wstride, n_frames)
        context, _ = encoder(masked, widths, True)
        with torch.no_grad():
            visual, _ = encoder(images, widths, False)
        q = self.query(context[mask])
        t = self.target(visual.detach()[mask])
        loss, acc, candidates = contrast_masked(q, t, mask.nonzero()[:, 0],
                                                self.cfg.distractors, self.cfg.temperature)
        return loss, {"acc": acc, "chance": chance(candidates, q),
                      "masked": mask.sum() / n_frames.sum() * 100}
