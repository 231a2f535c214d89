"""PerSec (Liu et al., AAAI 2022, "Perceiving Stroke-Semantic Context"): masked contrast at two
levels of the encoder, the strokes (CNN frames) and the semantics (BiLSTM frames).

PerSec puts a "context perceiver" on a low-level and on a high-level feature map of the encoder:
each masks feature elements, aggregates the context around them, and must tell each masked
element's true feature from the other elements of the same image (wav2vec 2.0's contrast, in
the feature spaces of a text recognizer). Here, on this library's CNN + BiLSTM encoder:

- the line goes through the CNN once, unmasked; spans of its frames (`span` frames, about
  `ratio` of each line's frames, inside its true length: `masked.span_mask`) are replaced by a
  learned mask embedding, in feature space as in wav2vec 2.0 and PerSec;
- stroke level: a local aggregator (two 1-D convolutions reading `window` frames, the stand-in
  for PerSec's windowed stroke aggregator) reads the masked CNN frames; its output at each
  masked frame must pick that frame's true CNN feature (stop-gradient, linearly projected)
  among 1 + K candidates;
- semantic level: the encoder's own BiLSTM reads the same masked CNN frames (it is the context
  aggregator a recognizer keeps); its output at each masked frame (projected) must pick the
  BiLSTM frame of the unmasked line at that place (stop-gradient, projected) among 1 + K.

Distractors are other masked frames of the same line first (`masked.contrast_masked`), so the
writing style alone does not give the answer. Loss = stroke_weight * stroke + semantic_weight *
semantic, each the InfoNCE of `losses/masked.py`.

Its targets go through a learnable quantizer: here `quantize: true` gives wav2vec 2.0's Gumbel
product quantizer with its diversity loss (quantizer.py; its sizes and schedule assumed); off
by default, as it learns more slowly in short runs (docs/pretexts.md). What the publication
does differently, or what could not be checked and is assumed here: its stroke level is an
early stage of a ResNet / ViT backbone read as a 2-D map and its aggregators are attention
blocks (here: the CNN's output frames, 1-D, a convolutional aggregator and the BiLSTM, the
encoder being left as it is); its mask sampling and sizes are not reproduced (here: spans of
frames, one mask for both levels).

The semantic targets are contextual: the unmasked line's BiLSTM frame at a place also encodes
the context the query sees, so part of the semantic task can be met from the surroundings alone
(as in data2vec, whose targets are contextual too); the stroke targets hold only what the CNN
saw around the frame (about 34 px for `small`), so the stroke task needs the masked content.

Metrics: `acc` = % of masked frames whose semantic query scores its true target strictly above
all K distractors, `stroke_acc` the same at the stroke level (both against `chance` = 100 /
(K + 1)); `masked` = % of valid frames masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Metrics, Pretext, chance
from htr_ssl.pretext.losses.diversity import codebook_diversity, codebook_perplexity
from htr_ssl.pretext.masked import contrast_masked, span_mask
from htr_ssl.pretext.quantizer import GumbelQuantizer, annealed_tau


@dataclass
class PerSecConfig:
    ratio: float = 0.5           # fraction of each line's frames to mask (spans may overlap)
    span: int = 5                # frames per masked span
    distractors: int = 20        # K candidates besides the true one, at each level
    temperature: float = 0.1     # softmax temperature over cosine similarities, both levels
    stroke_weight: float = 1.0   # weight of the stroke-level loss
    semantic_weight: float = 1.0  # weight of the semantic-level loss
    window: int = 7              # frames each of the stroke aggregator's two convolutions reads
    hidden: int = 256            # channels of the stroke aggregator
    dim: int = 256               # size of the projected queries and targets, both levels
    quantize: bool = False       # targets through a Gumbel product quantizer (quantizer.py)
    codebooks: int = 2           # quantizer: codebooks (wav2vec 2.0: 2) ...
    codes: int = 320             # ... of this many codes each (wav2vec 2.0: 320)
    tau_start: float = 2.0       # Gumbel temperature at step 0 ...
    tau_end: float = 0.5         # ... annealed geometrically to this (wav2vec 2.0: 2 -> 0.5)
    tau_steps: int = 2000        # ... over this many steps
    diversity_weight: float = 0.1  # weight of the codebook diversity loss (wav2vec 2.0: 0.1)

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ValueError(f"pretext.persec.ratio={self.ratio} must be in (0, 1)")
        for key in ("span", "distractors", "hidden", "dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.persec.{key}={getattr(self, key)} must be >= 1")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"pretext.persec.window={self.window} must be odd and >= 1 "
                             "(centred on the frame it aggregates for)")
        if self.temperature <= 0:
            raise ValueError(f"pretext.persec.temperature={self.temperature} must be > 0")
        for key in ("stroke_weight", "semantic_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"pretext.persec.{key}={getattr(self, key)} must be >= 0")
        for key in ("codebooks", "codes"):
            if getattr(self, key) < 1:
                raise ValueError(f"pretext.persec.{key}={getattr(self, key)} must be >= 1")
        if self.quantize and self.dim % self.codebooks:
            raise ValueError(f"pretext.persec.dim={self.dim} must divide into "
                             f"pretext.persec.codebooks={self.codebooks} equal parts")
        if min(self.tau_start, self.tau_end) <= 0 or self.tau_steps < 0 \
                or self.diversity_weight < 0:
            raise ValueError("pretext.persec.tau_start and tau_end must be > 0, tau_steps and "
                             "diversity_weight >= 0")
        if self.stroke_weight == 0 and self.semantic_weight == 0:
            raise ValueError("pretext.persec.stroke_weight and pretext.persec.semantic_weight "
                             "are both 0: nothing to learn")


class PerSec(Pretext):
    def __init__(self, cfg: PerSecConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        if encoder.lstm is None:
            raise ValueError("pretext persec needs an encoder with a BiLSTM (its semantic "
                             "level); this one has encoder.lstm_layers=0")
        visual, contextual = encoder.dim(False), encoder.dim(True)
        self.mask_embedding = nn.Parameter(torch.rand(visual))
        pad = cfg.window // 2
        self.stroke_query = nn.Sequential(
            nn.Conv1d(visual, cfg.hidden, cfg.window, padding=pad), nn.ReLU(inplace=True),
            nn.Conv1d(cfg.hidden, cfg.dim, cfg.window, padding=pad))
        self.stroke_target = self.target_head(visual)
        self.semantic_query = nn.Linear(contextual, cfg.dim)
        self.semantic_target = self.target_head(contextual)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def target_head(self, dim_in: int) -> nn.Module:
        """A level's targets from its stop-gradient features: the quantizer, or a projection."""
        cfg = self.cfg
        if cfg.quantize:
            return GumbelQuantizer(dim_in, cfg.dim, cfg.codebooks, cfg.codes)
        return nn.Linear(dim_in, cfg.dim)

    @torch.no_grad()
    def after_step(self, encoder: Encoder) -> None:
        """`step` counts optimizer steps: the Gumbel temperature's schedule reads it."""
        self.step += 1

    def targets(self, level: nn.Module, features: torch.Tensor, metrics: Metrics, name: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets of one level from its stop-gradient features, and the diversity loss of its
        quantizer (0 without one); its code perplexity goes into `metrics`."""
        if not self.cfg.quantize:
            return level(features), features.new_zeros((), dtype=torch.float32)
        cfg = self.cfg
        quantized, probs = level(features, annealed_tau(cfg.tau_start, cfg.tau_end,
                                                        int(self.step), cfg.tau_steps))
        metrics[f"{name}_perplexity"] = codebook_perplexity(probs.detach()).mean()
        return quantized, codebook_diversity(probs)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.cfg
        frames, lengths = encoder(batch.images, batch.widths, False)  # (B, T, C) CNN frames
        mask = span_mask(lengths, frames.shape[1], cfg.ratio, cfg.span)
        masked = torch.where(mask[..., None], self.mask_embedding.to(frames.dtype), frames)
        with torch.no_grad():
            clean_context = encoder.context(frames.detach(), lengths)
        line_of = mask.nonzero()[:, 0]
        metrics: Metrics = {}
        stroke_q = self.stroke_query(masked.transpose(1, 2)).transpose(1, 2)[mask]
        stroke_t, stroke_div = self.targets(self.stroke_target, frames.detach()[mask], metrics,
                                            "stroke")
        stroke, stroke_acc, candidates = contrast_masked(
            stroke_q, stroke_t, line_of, cfg.distractors, cfg.temperature, cfg.quantize)
        semantic_q = self.semantic_query(encoder.context(masked, lengths)[mask])
        semantic_t, semantic_div = self.targets(self.semantic_target, clean_context[mask],
                                                metrics, "semantic")
        semantic, acc, _ = contrast_masked(
            semantic_q, semantic_t, line_of, cfg.distractors, cfg.temperature, cfg.quantize)
        loss = cfg.stroke_weight * stroke + cfg.semantic_weight * semantic \
            + cfg.diversity_weight * (stroke_div + semantic_div)
        return loss, {"acc": acc, "chance": chance(candidates, loss), "stroke_acc": stroke_acc,
                      "stroke_loss": stroke.detach(), "semantic_loss": semantic.detach(),
                      "masked": mask.sum() / lengths.sum() * 100, **metrics}
