"""The Recognizer: one encoder with a CTC head, an attention decoder, or both ("hybrid").

The hybrid trains a CTC loss on the same frames as an auxiliary, in the spirit of the CTC
shortcut of Retsinas et al. 2022, and decodes with either head.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from htr_ssl.config import from_dict
from htr_ssl.data.alphabet import Alphabet, TokenIds
from htr_ssl.models.attention import AttentionDecoder, attention_loss
from htr_ssl.models.ctc import CTCHead, ctc_greedy, ctc_loss
from htr_ssl.models.encoders import EncoderConfig, build_encoder

if TYPE_CHECKING:
    from htr_ssl.data.sample import Batch

DECODERS = ("ctc", "attention", "hybrid")


@dataclass
class DecoderConfig:
    """The head(s) on the encoder (the `decoder:` config group): ``kind`` ctc | attention |
    hybrid, the hybrid's loss weight ``w * ctc + (1 - w) * attention``, and the attention
    decoder's sizes (``max_len``: longest decoded text). ``dropout`` applies to every head."""

    kind: str = "ctc"
    hybrid_ctc_weight: float = 0.5
    attn_hidden: int = 256
    attn_emb: int = 64
    max_len: int = 128
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in DECODERS:
            raise ValueError(f"decoder.kind={self.kind!r}: unknown decoder; use one of "
                             f"{', '.join(DECODERS)}")
        if not 0.0 <= self.hybrid_ctc_weight <= 1.0:
            raise ValueError(f"decoder.hybrid_ctc_weight={self.hybrid_ctc_weight} must be "
                             "between 0 and 1")


@dataclass
class RecognizerConfig:
    """Encoder + decoder, the shape of the `model:` and `decoder:` config groups."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


# The decoder's options as the first checkpoints stored them, next to `encoder` in
# `model_config` (`{"encoder": {...}, "decoder": "ctc", "hybrid_ctc_weight": 0.5, ...}`).
_FLAT_DECODER_KEYS = ("hybrid_ctc_weight", "attn_hidden", "attn_emb", "max_len", "dropout")


def recognizer_config_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """A saved `model_config` in today's nested shape (``{"encoder": {...}, "decoder":
    {"kind": ..., ...}}``), whether it is that already or the flat shape checkpoints written
    before `DecoderConfig` have (``"decoder": "ctc"`` with the decoder's options beside it)."""
    values = dict(values)
    if isinstance(values.get("decoder"), Mapping):
        return values
    decoder: dict[str, Any] = {"kind": values.pop("decoder")} if "decoder" in values else {}
    decoder.update({k: values.pop(k) for k in _FLAT_DECODER_KEYS if k in values})
    return {**values, "decoder": decoder}


def recognizer_config_from_dict(values: Mapping[str, Any], prefix: str = "model_config."
                                ) -> RecognizerConfig:
    """The RecognizerConfig a checkpoint or export saved (`asdict`), in either shape (see
    `recognizer_config_dict`); unknown or ill-typed options are errors naming them."""
    return from_dict(RecognizerConfig, recognizer_config_dict(values), prefix)


@dataclass
class Prediction:
    """Decoded ids per sample; attention weights (len(ids), T_i) per sample when attention decoded.

    ``ctc_logits``/``lengths`` are kept for CTC decodes so a lexicon/LM beam decoder
    (``htr_ssl.eval.decoding.CTCBeamDecoder``) can re-decode, and confidences be computed,
    without a second forward pass. ``token_probs`` (attention) holds the probability of every
    emitted token, <eos> included when reached.
    """

    ids: list[list[int]]
    attention: list[torch.Tensor] | None = None
    ctc_logits: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    token_probs: list[list[float]] | None = None


class Recognizer(nn.Module):
    """An Encoder with a CTC head, an attention decoder, or both."""

    def __init__(self, cfg: RecognizerConfig, n_chars: int) -> None:
        super().__init__()
        if cfg.decoder.kind not in DECODERS:  # a DecoderConfig checks this, unless edited since
            raise ValueError(f"unknown decoder {cfg.decoder.kind!r}; use one of {DECODERS}")
        self.cfg = cfg
        self.n_chars = n_chars
        ids = TokenIds(n_chars)  # the Alphabet's id layout
        self.sos, self.eos = ids.sos, ids.eos
        self.encoder = build_encoder(cfg.encoder)
        dim = self.encoder.out_dim
        self.ctc: CTCHead | None = None
        self.attention: AttentionDecoder | None = None
        dec = cfg.decoder
        if dec.kind in ("ctc", "hybrid"):
            self.ctc = CTCHead(dim, ids.ctc_size, dec.dropout)
        if dec.kind in ("attention", "hybrid"):
            self.attention = AttentionDecoder(dim, ids.attn_size, self.sos, self.eos,
                                              dec.attn_hidden, dec.attn_emb, dec.max_len,
                                              dec.dropout)

    def forward(self, images: torch.Tensor, widths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder frames (B, T, C) and their counts."""
        return self.encoder(images, widths)

    def ctc_logits(self, images: torch.Tensor, widths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC scores (B, T, n_chars + 1) and frame counts, for external (LM) decoding."""
        if self.ctc is None:
            raise ValueError("this recognizer has no CTC head (decoder='attention')")
        frames, lengths = self.encoder(images, widths)
        return self.ctc(frames), lengths

    def loss(
        self,
        images: torch.Tensor,
        widths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss and metrics: loss, ctc_loss / attn_loss, skipped (CTC-unalignable)."""
        frames, lengths = self.encoder(images, widths)
        metrics: dict[str, float] = {}
        parts: list[tuple[float, torch.Tensor]] = []
        dec = self.cfg.decoder
        w = dec.hybrid_ctc_weight if dec.kind == "hybrid" else 1.0
        if self.ctc is not None:
            loss_ctc, valid = ctc_loss(self.ctc(frames), lengths, targets, target_lengths)
            metrics["ctc_loss"] = float(loss_ctc.detach())
            metrics["skipped"] = int((~valid).sum())
            parts.append((w, loss_ctc))
        if self.attention is not None:
            logits, _ = self.attention(frames, lengths, targets, target_lengths)
            loss_attn = attention_loss(logits, targets, target_lengths, self.eos)
            metrics["attn_loss"] = float(loss_attn.detach())
            metrics.setdefault("skipped", 0)
            parts.append((1.0 - w if self.ctc is not None else 1.0, loss_attn))
        loss = sum((weight * part for weight, part in parts), torch.zeros((), device=frames.device))
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        widths: torch.Tensor,
        mode: str | None = None,
        beam: int = 1,
        max_len: int | None = None,
    ) -> Prediction:
        """Decode a batch. mode: "ctc" (greedy best path) or "attention" (greedy if beam == 1,
        else length-normalised beam search); default: attention when the model has it.

        Call ``model.eval()`` first: BatchNorm and dropout in train mode change the reading.
        """
        mode = mode or ("attention" if self.attention is not None else "ctc")
        frames, lengths = self.encoder(images, widths)
        if mode == "ctc":
            if self.ctc is None:
                raise ValueError("mode='ctc' needs a CTC head (decoder='ctc' or 'hybrid')")
            logits = self.ctc(frames).float()
            return Prediction(ctc_greedy(logits, lengths), ctc_logits=logits, lengths=lengths)
        if mode == "attention":
            if self.attention is None:
                raise ValueError("mode='attention' needs decoder='attention' or 'hybrid'")
            if beam > 1:
                out = self.attention.beam_search(frames, lengths, beam, max_len)
            else:
                out = self.attention.greedy(frames, lengths, max_len)
            return Prediction(out.ids, attention=out.weights, token_probs=out.probs)
        raise ValueError(f"unknown decoding mode {mode!r}; use 'ctc' or 'attention'")


def build_recognizer(cfg: RecognizerConfig, alphabet: Alphabet | int) -> Recognizer:
    """Build a Recognizer for an Alphabet (or a plain number of characters)."""
    n_chars = alphabet if isinstance(alphabet, int) else len(alphabet)
    return Recognizer(cfg, n_chars)


def recognizer_loss(model: Recognizer, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """`model.loss` on a labeled batch: the `loss_fn` the training loop calls."""
    return model.loss(batch.images, batch.widths, batch.targets, batch.target_lengths)
