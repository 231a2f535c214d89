"""CPC (van den Oord et al. 2018): from the writing up to frame t, predict frames t+1..t+K.

A text line is a sequence read left to right, the natural "predict the future" pretext (as
CPC and wav2vec do for speech). The encoder's CNN frames z_t are the targets; a causal GRU
owned by the pretext summarizes z_1..z_t into a context c_t; one linear map per offset k
predicts z_{t+k} from c_t, and InfoNCE makes each prediction pick the true z_{t+k} out of
candidates: `negatives` other frames, `same_line` share of them from the same line (the hard
ones: same writer, same ink), the rest from other lines of the batch.

Why the CNN frames and not the encoder's BiLSTM output: the BiLSTM reads the line in both
directions, so its frame t already contains frame t+k. CPC therefore trains the CNN; the
encoder's BiLSTM gets no gradient from it (as seqclr with contextual=false; under torchrun
find_unused_parameters=auto covers it). Combine with a pretext that trains the BiLSTM
(`pretext=[cpc,masked]`) if you want both.

Padding: the GRU is causal, so a valid frame's context never reads padding; a prediction is
made only where t + k is a valid frame of the line; negatives are valid frames only. At most
`max_predictions` (t, k) pairs are scored per step (drawn at random), which bounds memory on
long lines. Negatives come from this rank's batch (under torchrun, each rank its own).

Metrics: `acc` = % of predictions whose true frame scores strictly above every negative
(chance 100 / (negatives + 1)); `acc_k1` = the same for the next frame alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.models.ops import valid_mask
from htr_ssl.pretext.base import Metrics, Pretext, chance
from htr_ssl.pretext.losses.cpc import cpc_infonce, indexed_logits
from htr_ssl.pretext.losses.masked import candidate_top1


@dataclass
class CPCConfig:
    steps: int = 12              # predict 1..steps frames ahead (x the encoder's stride in px)
    negatives: int = 20          # wrong candidates per prediction
    same_line: float = 0.5       # share of the negatives drawn from the prediction's own line
    context: int = 256           # GRU (context network) size
    dim: int = 256               # size of predictions and projected targets
    temperature: float = 0.1     # softmax temperature over cosine similarities
    max_predictions: int = 4096  # (t, k) pairs scored per step at most

    def __post_init__(self) -> None:
        for key in ("steps", "negatives", "context", "dim", "max_predictions"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.cpc.{key}={getattr(self, key)} must be >= 1")
        if not 0.0 <= self.same_line <= 1.0:
            raise ValueError(f"pretext.cpc.same_line={self.same_line} must be in [0, 1]")
        if self.temperature <= 0:
            raise ValueError(f"pretext.cpc.temperature={self.temperature} must be > 0")


def sample_negatives(line_of: torch.Tensor, positives: torch.Tensor, same: int, other: int
                     ) -> torch.Tensor:
    """(M, same + other) rows of the frame pool: for each positive frame index, `same` other
    frames of its line and `other` frames of other lines, all distinct, never the positive.

    When a line (or the rest of the batch) has too few frames, the missing ones come from the
    other group, so every row has the same count; the pool must hold more frames than that.
    """
    n, k = len(line_of), same + other
    if k >= n:
        raise ValueError(f"{k} negatives need a pool of more than {k} frames, got {n}")
    line = line_of[positives]
    prio = torch.rand(len(positives), n, device=line_of.device)
    other_line = (line[:, None] != line_of[None, :]).float()
    # same-line frames rank first for the first `same` picks, other-line ones after: pick
    # `same` from prio + other_line (same line first), `other` from prio + (1 - other_line)
    rows = torch.arange(len(positives), device=line_of.device)
    prio[rows, positives] = float("inf")
    first = (prio + other_line).topk(same, dim=1, largest=False).indices if same else \
        positives.new_zeros(len(positives), 0)
    prio2 = prio + (1 - other_line)
    prio2.scatter_(1, first, float("inf"))
    second = prio2.topk(other, dim=1, largest=False).indices if other else \
        positives.new_zeros(len(positives), 0)
    return torch.cat([first, second], dim=1)


def prediction_pairs(lengths: torch.Tensor, t: int, steps: int, limit: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(line, frame t, offset k) of the predictions: every t with t + k inside its line,
    k = 1..steps, at most `limit` of them drawn at random."""
    valid = valid_mask(lengths, t)  # (B, T)
    ks = torch.arange(1, steps + 1, device=lengths.device)
    tt = torch.arange(t, device=lengths.device)
    ok = (tt[None, :, None] + ks[None, None, :]) < lengths[:, None, None]  # (B, T, K)
    ok &= valid[..., None]
    b, frame, k = ok.nonzero(as_tuple=True)
    if len(b) > limit:
        pick = torch.randperm(len(b), device=b.device)[:limit]
        b, frame, k = b[pick], frame[pick], k[pick]
    return b, frame, k + 1


class CPC(Pretext):
    def __init__(self, cfg: CPCConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.gru = nn.GRU(encoder.dim(False), cfg.context, batch_first=True)
        self.predict = nn.Linear(cfg.context, cfg.steps * cfg.dim)
        self.target = nn.Linear(encoder.dim(False), cfg.dim)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        z, lengths = encoder(batch.images, batch.widths, False)  # (B, T, C) CNN frames
        context, _ = self.gru(z)  # causal: c_t reads z_1..z_t only, never later padding
        preds = self.predict(context).unflatten(-1, (cfg.steps, cfg.dim))  # (B, T, K, D)
        valid = valid_mask(lengths, z.shape[1])
        pool = self.target(z[valid])  # the valid frames, line-major
        line_of = valid.nonzero()[:, 0]
        flat = valid.flatten().long().cumsum(0) - 1  # (B * T) -> row in `pool`
        b, t, k = prediction_pairs(lengths, z.shape[1], cfg.steps, cfg.max_predictions)
        k_neg = min(cfg.negatives, len(pool) - 2)
        metrics = {"chance": chance(k_neg + 1, pool)}
        if len(b) == 0 or k_neg < 1:  # lines of one frame: nothing to predict
            zero = torch.tensor(0.0, device=pool.device)
            return pool.sum() * 0.0 + preds.sum() * 0.0, {**metrics, "acc": zero,
                                                            "acc_k1": zero}
        positive = flat[b * z.shape[1] + t + k]
        same = round(k_neg * cfg.same_line)
        negatives = sample_negatives(line_of, positive, same, k_neg - same)
        candidates = torch.cat([positive[:, None], negatives], dim=1)
        p = preds[b, t, k - 1]
        loss = cpc_infonce(p, pool, candidates, cfg.temperature)
        logits = indexed_logits(p.detach(), pool.detach(), candidates, 1.0)
        hit = logits[:, 0] > logits[:, 1:].amax(1)
        first = k == 1
        acc_k1 = hit[first].float().mean() * 100 if first.any() else hit.float().mean() * 0
        return loss, {**metrics, "acc": candidate_top1(logits), "acc_k1": acc_k1}
