"""How sure a recognizer is of what it read, per line and per word: a number in [0, 1].

- CTC (greedy or beam search, with or without lexicon/LM): a line's confidence is
  P(text | image) ** (1 / characters), P summed over every alignment of the text to the frames
  (the CTC forward algorithm, as in the loss). A word gets the same measure on the frames that
  the best (Viterbi) alignment of the line gives it, up to the spaces around it. An empty
  reading gets P(nothing written), the product of the frames' blank posteriors.
- Attention (greedy or beam search): the geometric mean of the probabilities of the emitted
  characters, the end-of-line step included for the line; a word, of its characters.

Both are the probability of the whole text normalized per character, so short and long lines
compare. Summing over alignments matters: the probability of the best path alone, or the peak
posterior of each emitted character, cannot see a character that was left out, and on a
briefly trained model they ranked wrong lines above right ones as often as not; this measure
ranked them right 82-89 % of the time (tests/eval/test_confidence.py). The numbers rank lines
by how likely they are to be wrong; they are not calibrated probabilities.
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
