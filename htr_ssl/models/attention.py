"""An LSTM decoder with additive (Bahdanau) attention over encoder frames, and its loss.

It predicts characters plus <sos>/<eos> (ids n+1, n+2; 0 is padding) and returns its attention
weights for every output step, which the heat maps and the tests use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.models.ops import valid_mask


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
class Decoded:
    """Per sample: ids (without <eos>), attention weights (len(ids), T_i), and the
    probability of each emitted token, <eos> included when the line ended before max_len."""

    ids: list[list[int]]
    weights: list[torch.Tensor]
    probs: list[list[float]]


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
        mask = valid_mask(lengths.to(frames.device), frames.shape[1])
        return _Memory(frames, self.attention.key(frames), mask)

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
    ) -> Decoded:
        """Argmax decoding of a batch until every sample has emitted <eos> or ``max_len`` steps.

        Returns ids (without <eos>), per-character attention weights (len(ids), T_i) and the
        probability of every emitted token (<eos> included when it was reached).
        """
        max_len = max_len or self.max_len
        b = frames.shape[0]
        memory = self._memory(frames, lengths)
        state = self._initial_state(b, frames)
        tokens = torch.full((b,), self.sos, dtype=torch.long, device=frames.device)
        steps, weights, chosen = [], [], []
        done = torch.zeros(b, dtype=torch.bool, device=frames.device)
        for _ in range(max_len):
            logits, state, w = self.step(tokens, state, memory)
            logp = self._log_probs(logits)
            tokens = logp.argmax(-1)
            chosen.append(logp.gather(1, tokens[:, None]).squeeze(1))
            steps.append(tokens)
            weights.append(w)
            done |= tokens == self.eos
            if bool(done.all()):
                break
        all_ids = torch.stack(steps, 1).cpu().tolist()
        all_w = torch.stack(weights, 1).float().cpu()
        all_p = torch.stack(chosen, 1).exp().cpu().tolist()
        ids_out, w_out, p_out = [], [], []
        for i, seq in enumerate(all_ids):
            n = seq.index(self.eos) if self.eos in seq else len(seq)
            ids_out.append(seq[:n])
            w_out.append(all_w[i, :n, : int(lengths[i])])
            p_out.append(all_p[i][: min(n + 1, len(seq))])
        return Decoded(ids_out, w_out, p_out)

    @torch.no_grad()
    def beam_search(
        self, frames: torch.Tensor, lengths: torch.Tensor, beam: int = 5,
        max_len: int | None = None,
    ) -> Decoded:
        """Length-normalised beam search, one sample at a time (the beams form the batch).

        A hypothesis is finished when it emits <eos>; its score is the summed log-probability
        divided by its length (including <eos>), so long lines are not punished for their
        length. Search stops once ``beam`` hypotheses are finished or after ``max_len`` steps.
        """
        max_len = max_len or self.max_len
        decoded = Decoded([], [], [])
        for i in range(frames.shape[0]):
            n = int(lengths[i])
            ids, w, p = self._beam_one(frames[i : i + 1, :n], lengths[i : i + 1], beam, max_len)
            decoded.ids.append(ids)
            decoded.weights.append(w)
            decoded.probs.append(p)
        return decoded

    def _beam_one(
        self, frames: torch.Tensor, lengths: torch.Tensor, beam: int, max_len: int
    ) -> tuple[list[int], torch.Tensor, list[float]]:
        memory = self._memory(frames, lengths)
        device = frames.device
        hyps: list[list[int]] = [[]]
        hyp_w: list[list[torch.Tensor]] = [[]]
        hyp_lp: list[list[float]] = [[]]  # each emitted token's log-probability
        scores = torch.zeros(1, device=device)
        state = self._initial_state(1, frames)
        tokens = torch.full((1,), self.sos, dtype=torch.long, device=device)
        finished: list[tuple[float, list[int], list[torch.Tensor], list[float]]] = []
        for _ in range(max_len):
            index = torch.zeros(len(hyps), dtype=torch.long, device=device)
            logits, state, w = self.step(tokens, state, memory.select(index))
            logp = self._log_probs(logits)
            cand = (scores[:, None] + logp).view(-1)
            top_scores, top_idx = cand.topk(min(2 * beam, int(torch.isfinite(cand).sum())))
            keep_beam, keep_tok, keep_score = [], [], []
            for s, flat in zip(top_scores.tolist(), top_idx.tolist(), strict=True):
                src, tok = divmod(flat, self.n_classes)
                if tok == self.eos:
                    finished.append((s / (len(hyps[src]) + 1), hyps[src], hyp_w[src],
                                     [*hyp_lp[src], float(logp[src, tok])]))
                else:
                    keep_beam.append(src)
                    keep_tok.append(tok)
                    keep_score.append(s)
                if len(keep_beam) == beam:
                    break
            if len(finished) >= beam or not keep_beam:
                break
            w_cpu = w.float().cpu()
            lp_cpu = logp.cpu()
            hyps = [hyps[b] + [t] for b, t in zip(keep_beam, keep_tok, strict=True)]
            hyp_w = [hyp_w[b] + [w_cpu[b]] for b in keep_beam]
            hyp_lp = [hyp_lp[b] + [float(lp_cpu[b, t])]
                      for b, t in zip(keep_beam, keep_tok, strict=True)]
            src_idx = torch.tensor(keep_beam, device=device)
            state = (state[0][src_idx], state[1][src_idx])
            scores = torch.tensor(keep_score, device=device)
            tokens = torch.tensor(keep_tok, dtype=torch.long, device=device)
        if not finished:  # ran out of steps: rank the open hypotheses the same way
            finished = [(float(s) / max(len(h), 1), h, hw, lp) for s, h, hw, lp
                        in zip(scores.tolist(), hyps, hyp_w, hyp_lp, strict=True)]
        _, ids, weights, lps = max(finished, key=lambda f: f[0])
        t = frames.shape[1]
        return (ids, torch.stack(weights) if weights else torch.zeros(0, t),
                [math.exp(lp) for lp in lps])


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
