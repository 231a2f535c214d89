"""Decoders that turn encoder frames into text, their losses, and the Recognizer that joins them.

Two heads share one id space (see ``htr_ssl.data.alphabet``): the CTC head predicts blank (0) and
characters (1..n); the attention decoder predicts characters plus <sos>/<eos> (n+1, n+2), with 0
as padding. ``Recognizer`` puts either head, or both ("hybrid": a CTC loss on the same frames as
an auxiliary, in the spirit of the CTC shortcut of Retsinas et al. 2022), on one encoder.

Losses run in fp32 whatever the autocast context, because CTC's forward-backward and
log-softmax lose too much in bf16/fp16 and are the usual source of "the loss is NaN".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.models.encoders import EncoderConfig, build_encoder

if TYPE_CHECKING:
    from htr_ssl.data.alphabet import Alphabet

DECODERS = ("ctc", "attention", "hybrid")


# CTC ----------------------------------------------------------------------------------------


class CTCHead(nn.Module):
    """Dropout + linear projection of every frame to blank + character scores."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_dim, n_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(frames))  # (B, T, ctc_size)


def ctc_min_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Frames CTC needs per sample: one per label plus one blank between each repeated pair."""
    if targets.shape[1] < 2:
        return target_lengths.clone()
    pos = torch.arange(targets.shape[1] - 1, device=targets.device)
    repeats = (targets[:, 1:] == targets[:, :-1]) & (pos[None, :] < target_lengths[:, None] - 1)
    return target_lengths + repeats.sum(1)


def ctc_loss(
    logits: torch.Tensor,
    lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean per-character CTC loss over the samples CTC can align, and which ones those were.

    A sample whose frames are too few for its text (T < L + repeated adjacent labels) has no
    valid alignment: its loss would be infinite. It is left out of the mean and reported as
    False in the returned mask, so a batch never turns NaN; if no sample is valid the loss is a
    graph-connected zero.
    """
    lengths = lengths.long()
    target_lengths = target_lengths.long()
    valid = lengths >= ctc_min_frames(targets, target_lengths)
    with torch.autocast(logits.device.type, enabled=False):
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, C)
        per_sample = F.ctc_loss(log_probs, targets.long(), lengths, target_lengths, blank=0,
                                reduction="none", zero_infinity=True)
        per_char = per_sample / target_lengths.clamp(min=1).float()
        n_valid = valid.sum()
        loss = torch.where(valid, per_char, torch.zeros_like(per_char)).sum()
        loss = loss / n_valid.clamp(min=1).float() + 0.0 * logits.float().sum()
    return loss, valid


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks (id 0)."""
    best = logits.argmax(-1).cpu()
    out: list[list[int]] = []
    for path, n in zip(best.tolist(), lengths.cpu().tolist(), strict=True):
        ids: list[int] = []
        prev = 0
        for t in path[:n]:
            if t != prev and t != 0:
                ids.append(t)
            prev = t
        out.append(ids)
    return out


# Attention ----------------------------------------------------------------------------------


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score_j = v . tanh(W_k frame_j + W_q h), softmax over valid frames."""

    def __init__(self, enc_dim: int, query_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.key = nn.Linear(enc_dim, attn_dim, bias=False)
        self.query = nn.Linear(query_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (N, Q), keys (N, T, A) precomputed by ``self.key``, values (N, T, C), mask (N, T).

        Returns the context (N, C) and the weights (N, T), exactly 0 on masked frames.
        """
        scores = self.v(torch.tanh(keys + self.query(query)[:, None, :])).squeeze(-1)
        scores = scores.float().masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        context = torch.bmm(weights.to(values.dtype)[:, None, :], values).squeeze(1)
        return context, weights


@dataclass
class _Memory:
    """What every decoding step reads: frames, their attention keys and validity mask."""

    frames: torch.Tensor  # (N, T, C)
    keys: torch.Tensor  # (N, T, A)
    mask: torch.Tensor  # (N, T) bool

    def select(self, index: torch.Tensor) -> _Memory:
        return _Memory(self.frames[index], self.keys[index], self.mask[index])


class AttentionDecoder(nn.Module):
    """LSTM decoder with additive attention over the encoder frames.

    One step: attend with the previous hidden state -> context; LSTMCell on [embedding of the
    previous token, context]; predict from [new hidden state, context]. Training uses teacher
    forcing (input = <sos> + text, target = text + <eos>); inference is greedy or beam search.
    """

    def __init__(
        self,
        enc_dim: int,
        n_classes: int,
        sos: int,
        eos: int,
        hidden: int = 256,
        emb: int = 64,
        max_len: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_classes, self.sos, self.eos, self.max_len = n_classes, sos, eos, max_len
        self.hidden = hidden
        self.embed = nn.Embedding(n_classes, emb, padding_idx=0)
        self.attention = AdditiveAttention(enc_dim, hidden, hidden)
        self.cell = nn.LSTMCell(emb + enc_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden + enc_dim, n_classes)

    def _memory(self, frames: torch.Tensor, lengths: torch.Tensor) -> _Memory:
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
        return _Memory(frames, self.attention.key(frames), mask.to(frames.device))

    def _initial_state(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(n, self.hidden, device=like.device, dtype=torch.float32)
        return zeros, zeros.clone()

    def step(
        self,
        tokens: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        memory: _Memory,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """One output step: previous tokens (N,) -> logits (N, V), new state, weights (N, T)."""
        h, c = state
        context, weights = self.attention(h, memory.keys, memory.frames, memory.mask)
        x = torch.cat([self.embed(tokens), context.to(h.dtype)], dim=-1)
        h, c = self.cell(x.to(h.dtype), (h, c))
        h, c = h.float(), c.float()
        logits = self.out(self.dropout(torch.cat([h, context.to(h.dtype)], dim=-1)))
        return logits, (h, c), weights

    def forward(
        self,
        frames: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing. Returns logits (B, L+1, V) and attention weights (B, L+1, T)."""
        inputs = torch.cat([torch.full_like(targets[:, :1], self.sos), targets], dim=1)
        memory = self._memory(frames, lengths)
        state = self._initial_state(frames.shape[0], frames)
        logits, weights = [], []
        for t in range(inputs.shape[1]):
            step_logits, state, w = self.step(inputs[:, t], state, memory)
            logits.append(step_logits)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities with padding and <sos> forbidden as outputs."""
        logp = logits.float().log_softmax(-1)
        logp[:, 0] = float("-inf")
        logp[:, self.sos] = float("-inf")
        return logp

    @torch.no_grad()
    def greedy(
        self, frames: torch.Tensor, lengths: torch.Tensor, max_len: int | None = None
    ) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Argmax decoding of a batch until every sample has emitted <eos> or ``max_len`` steps.

        Returns ids (without <eos>) and per-character attention weights (len(ids), T_i).
        """
        max_len = max_len or self.max_len
        b = frames.shape[0]
        memory = self._memory(frames, lengths)
        state = self._initial_state(b, frames)
        tokens = torch.full((b,), self.sos, dtype=torch.long, device=frames.device)
        steps, weights = [], []
        done = torch.zeros(b, dtype=torch.bool, device=frames.device)
        for _ in range(max_len):
            logits, state, w = self.step(tokens, state, memory)
            tokens = self._log_probs(logits).argmax(-1)
            steps.append(tokens)
            weights.append(w)
            done |= tokens == self.eos
            if bool(done.all()):
                break
        all_ids = torch.stack(steps, 1).cpu().tolist()
        all_w = torch.stack(weights, 1).float().cpu()
        ids_out, w_out = [], []
        for i, seq in enumerate(all_ids):
            n = seq.index(self.eos) if self.eos in seq else len(seq)
            ids_out.append(seq[:n])
            w_out.append(all_w[i, :n, : int(lengths[i])])
        return ids_out, w_out

    @torch.no_grad()
    def beam_search(
        self, frames: torch.Tensor, lengths: torch.Tensor, beam: int = 5,
        max_len: int | None = None,
    ) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Length-normalised beam search, one sample at a time (the beams form the batch).

        A hypothesis is finished when it emits <eos>; its score is the summed log-probability
        divided by its length (including <eos>), so long lines are not punished for their
        length. Search stops once ``beam`` hypotheses are finished or after ``max_len`` steps.
        """
        max_len = max_len or self.max_len
        ids_out, w_out = [], []
        for i in range(frames.shape[0]):
            n = int(lengths[i])
            ids, w = self._beam_one(frames[i : i + 1, :n], lengths[i : i + 1], beam, max_len)
            ids_out.append(ids)
            w_out.append(w)
        return ids_out, w_out

    def _beam_one(
        self, frames: torch.Tensor, lengths: torch.Tensor, beam: int, max_len: int
    ) -> tuple[list[int], torch.Tensor]:
        memory = self._memory(frames, lengths)
        device = frames.device
        hyps: list[list[int]] = [[]]
        hyp_w: list[list[torch.Tensor]] = [[]]
        scores = torch.zeros(1, device=device)
        state = self._initial_state(1, frames)
        tokens = torch.full((1,), self.sos, dtype=torch.long, device=device)
        finished: list[tuple[float, list[int], list[torch.Tensor]]] = []
        for _ in range(max_len):
            index = torch.zeros(len(hyps), dtype=torch.long, device=device)
            logits, state, w = self.step(tokens, state, memory.select(index))
            cand = (scores[:, None] + self._log_probs(logits)).view(-1)
            top_scores, top_idx = cand.topk(min(2 * beam, int(torch.isfinite(cand).sum())))
            keep_beam, keep_tok, keep_score = [], [], []
            for s, flat in zip(top_scores.tolist(), top_idx.tolist(), strict=True):
                src, tok = divmod(flat, self.n_classes)
                if tok == self.eos:
                    finished.append((s / (len(hyps[src]) + 1), hyps[src], hyp_w[src]))
                else:
                    keep_beam.append(src)
                    keep_tok.append(tok)
                    keep_score.append(s)
                if len(keep_beam) == beam:
                    break
            if len(finished) >= beam or not keep_beam:
                break
            w_cpu = w.float().cpu()
            hyps = [hyps[b] + [t] for b, t in zip(keep_beam, keep_tok, strict=True)]
            hyp_w = [hyp_w[b] + [w_cpu[b]] for b in keep_beam]
            src_idx = torch.tensor(keep_beam, device=device)
            state = (state[0][src_idx], state[1][src_idx])
            scores = torch.tensor(keep_score, device=device)
            tokens = torch.tensor(keep_tok, dtype=torch.long, device=device)
        if not finished:  # ran out of steps: rank the open hypotheses the same way
            finished = [(float(s) / max(len(h), 1), h, hw)
                        for s, h, hw in zip(scores.tolist(), hyps, hyp_w, strict=True)]
        _, ids, weights = max(finished, key=lambda f: f[0])
        t = frames.shape[1]
        return ids, torch.stack(weights) if weights else torch.zeros(0, t)


def attention_loss(
    logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, eos: int
) -> torch.Tensor:
    """Cross-entropy (fp32) of teacher-forced logits (B, L+1, V) against text + <eos>.

    Padding (id 0) is ignored, so the mean is over real characters and the <eos> of each line.
    """
    b, steps = logits.shape[:2]
    gold = torch.zeros(b, steps, dtype=torch.long, device=logits.device)
    gold[:, : targets.shape[1]] = targets
    gold[torch.arange(b, device=logits.device), target_lengths.long()] = eos
    with torch.autocast(logits.device.type, enabled=False):
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), gold.reshape(-1),
                               ignore_index=0)


# Recognizer ---------------------------------------------------------------------------------


@dataclass
class RecognizerConfig:
    """Encoder + decoder kind. ``hybrid`` trains both heads: w * ctc + (1 - w) * attention."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: str = "ctc"
    hybrid_ctc_weight: float = 0.5
    attn_hidden: int = 256
    attn_emb: int = 64
    max_len: int = 128
    dropout: float = 0.1


@dataclass
class Prediction:
    """Decoded ids per sample; attention weights (len(ids), T_i) per sample when attention decoded.

    ``ctc_logits``/``lengths`` are kept for CTC decodes so a lexicon/LM beam decoder
    (``htr_ssl.eval.decoding.CTCBeamDecoder``) can re-decode without a second forward pass.
    """

    ids: list[list[int]]
    attention: list[torch.Tensor] | None = None
    ctc_logits: torch.Tensor | None = None
    lengths: torch.Tensor | None = None


class Recognizer(nn.Module):
    """An Encoder with a CTC head, an attention decoder, or both."""

    def __init__(self, cfg: RecognizerConfig, n_chars: int) -> None:
        super().__init__()
        if cfg.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {cfg.decoder!r}; use one of {DECODERS}")
        self.cfg = cfg
        self.n_chars = n_chars
        self.sos, self.eos = n_chars + 1, n_chars + 2
        self.encoder = build_encoder(cfg.encoder)
        dim = self.encoder.out_dim
        self.ctc: CTCHead | None = None
        self.attention: AttentionDecoder | None = None
        if cfg.decoder in ("ctc", "hybrid"):
            self.ctc = CTCHead(dim, n_chars + 1, cfg.dropout)
        if cfg.decoder in ("attention", "hybrid"):
            self.attention = AttentionDecoder(dim, n_chars + 3, self.sos, self.eos,
                                              cfg.attn_hidden, cfg.attn_emb, cfg.max_len,
                                              cfg.dropout)

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
        w = self.cfg.hybrid_ctc_weight if self.cfg.decoder == "hybrid" else 1.0
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
                ids, weights = self.attention.beam_search(frames, lengths, beam, max_len)
            else:
                ids, weights = self.attention.greedy(frames, lengths, max_len)
            return Prediction(ids, attention=weights)
        raise ValueError(f"unknown decoding mode {mode!r}; use 'ctc' or 'attention'")


def build_recognizer(cfg: RecognizerConfig, alphabet: Alphabet | int) -> Recognizer:
    """Build a Recognizer for an Alphabet (or a plain number of characters)."""
    n_chars = alphabet if isinstance(alphabet, int) else len(alphabet)
    return Recognizer(cfg, n_chars)
