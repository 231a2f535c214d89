"""How sure a recognizer is of what it read: per character, per word and per line.

A character's confidence is the probability the model gave to that character where it
emitted it:

- CTC (greedy or beam search, with or without lexicon/LM): the decoded text is aligned to the
  frame posteriors (torchaudio's Viterbi `forced_align`; for a greedy reading this is the best
  path itself), and the character gets the highest posterior it reaches on the frames of its
  span;
- attention (greedy or beam search): the softmax probability of the character at its step.

A word's and a line's confidence is the geometric mean of their characters' confidences (the
line's spaces included; an attention line also counts its end-of-line decision): the product
of the character probabilities is about the chance that the whole word or line is right, and
the geometric mean makes that comparable between short and long lines. An empty CTC reading
gets the geometric mean of the blank posteriors over its frames. Numbers are in [0, 1]; they
rank lines by how likely they are to be wrong, they are not calibrated probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float


@dataclass(frozen=True)
class Reading:
    """A line's text, its confidence, and its whitespace-separated words with theirs."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()

    @classmethod
    def from_chars(cls, text: str, chars: Sequence[float], line: float) -> Reading:
        """`chars` holds one confidence per character of `text`."""
        if len(chars) != len(text):
            raise ValueError(f"{len(chars)} confidences for {len(text)} characters")
        return cls(text, line, tuple(Word(text[a:b], geometric_mean(chars[a:b]))
                                     for a, b in _word_bounds(text)))


def geometric_mean(probs: Sequence[float]) -> float:
    """exp(mean(log p)); 1.0 for nothing (no evidence against), 0.0 if any p is 0."""
    if not probs:
        return 1.0
    if min(probs) <= 0:
        return 0.0
    return math.exp(sum(math.log(p) for p in probs) / len(probs))


def ctc_reading(log_probs: torch.Tensor, text: str, ids: Sequence[int]) -> Reading:
    """The Reading of `text` (character ids `ids`) from one line's CTC log-posteriors
    `log_probs` (T, C), blank 0: line and words scored by `ctc_sequence_confidence`, each word
    on the frames that the best alignment of the line gives it."""
    log_probs = log_probs.detach().float().cpu()
    line = ctc_sequence_confidence(log_probs, ids)
    spans = _aligned_spans(log_probs, ids) if line > 0 and ids else None
    words = []
    for start, end in _word_bounds(text):
        if spans is None:
            words.append(Word(text[start:end], 0.0))
            continue
        first = spans[start - 1][1] if start > 0 else 0  # after the space before the word
        last = spans[end][0] if end < len(ids) else len(log_probs)  # before the one after
        words.append(Word(text[start:end],
                          ctc_sequence_confidence(log_probs[first:last], ids[start:end])))
    return Reading(text, line, tuple(words))


def ctc_sequence_confidence(log_probs: torch.Tensor, ids: Sequence[int]) -> float:
    """P(ids | frames) ** (1 / len(ids)): the probability CTC gives the whole label sequence,
    summed over every alignment, per character (the whole probability for an empty one)."""
    if len(log_probs) == 0:
        return 1.0 if not ids else 0.0
    if not ids:
        return math.exp(float(log_probs[:, 0].sum()))
    nll = torch.nn.functional.ctc_loss(
        log_probs[:, None], torch.tensor([list(ids)]), torch.tensor([len(log_probs)]),
        torch.tensor([len(ids)]), blank=0, reduction="sum", zero_infinity=False)
    return math.exp(-float(nll) / len(ids)) if math.isfinite(float(nll)) else 0.0


def _aligned_spans(log_probs: torch.Tensor, ids: Sequence[int]) -> list[tuple[int, int]]:
    """(first frame, end frame) of every label of the best (Viterbi) alignment of `ids`."""
    from torchaudio.functional import forced_align, merge_tokens  # heavy; only when reading

    path, scores = forced_align(log_probs[None], torch.tensor([list(ids)], dtype=torch.int32),
                                blank=0)
    return [(s.start, s.end) for s in merge_tokens(path[0], scores[0].exp(), blank=0)]


def _word_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) character positions of the whitespace-separated words of `text`."""
    bounds, start = [], None
    for i, c in enumerate(f"{text} "):
        if c.isspace():
            if start is not None:
                bounds.append((start, i))
            start = None
        elif start is None:
            start = i
    return bounds


def attention_confidences(token_probs: Sequence[float], n_chars: int
                          ) -> tuple[list[float], float]:
    """(per-character confidences, line confidence) of an attention reading whose steps had
    `token_probs`: one per character, then the end-of-line step when it was reached."""
    chars = [float(p) for p in token_probs[:n_chars]]
    return chars, geometric_mean([float(p) for p in token_probs])


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The probability that a random positive scores above a random negative (ties count
    half): how well `scores` rank, e.g. confidences of correct lines above wrong ones."""
    pos = [s for s, y in zip(scores, positive, strict=True) if y]
    neg = [s for s, y in zip(scores, positive, strict=True) if not y]
    if not pos or not neg:
        raise ValueError("AUROC needs at least one positive and one negative")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))
