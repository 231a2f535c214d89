"""Recognition metrics with editdistance: CER, WER, word accuracy, line accuracy.

Rates are summed over the set (total edits / total reference units), not averaged per line,
as in the HTR literature. Word tokenization is explicit because it moves WER:
`whitespace` splits on spaces; `punct` also makes each punctuation mark its own word, as in
IAM's ascii ground truth ("Mr . Brown ,").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import editdistance

Tokenization = Literal["whitespace", "punct"]
_PUNCT_SPLIT = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str, mode: Tokenization = "whitespace") -> list[str]:
    if mode == "whitespace":
        return text.split()
    if mode == "punct":
        return _PUNCT_SPLIT.findall(text)
    raise ValueError(f"unknown tokenization {mode!r}; use whitespace or punct")


def char_errors(ref: str, hyp: str) -> int:
    return editdistance.eval(unicodedata.normalize("NFC", ref), unicodedata.normalize("NFC", hyp))


def sample_cer(ref: str, hyp: str) -> float:
    """Per-sample CER in %, for inspecting errors (an empty reference counts its insertions)."""
    return 100.0 * char_errors(ref, hyp) / max(len(ref), 1)


@dataclass(frozen=True)
class MetricConfig:
    """`word_images`: the set holds single words, so `wacc` is the exact-match rate."""

    tokenization: Tokenization = "whitespace"
    word_images: bool = False


def compute_metrics(
    refs: Sequence[str], hyps: Sequence[str], cfg: MetricConfig = MetricConfig()
) -> dict[str, float]:
    """cer, wer, wacc, wacc_caseless, line_acc (all %), plus counts n, chars, words."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    chars = sum(len(r) for r in refs)
    c_err = sum(char_errors(r, h) for r, h in zip(refs, hyps, strict=True))
    words = 0
    w_err = w_err_caseless = 0
    for r, h in zip(refs, hyps, strict=True):
        rt, ht = tokenize(r, cfg.tokenization), tokenize(h, cfg.tokenization)
        words += len(rt)
        w_err += editdistance.eval(rt, ht)
        w_err_caseless += editdistance.eval([t.lower() for t in rt], [t.lower() for t in ht])
    n = len(refs)
    exact = sum(r == h for r, h in zip(refs, hyps, strict=True))
    exact_caseless = sum(r.lower() == h.lower() for r, h in zip(refs, hyps, strict=True))
    wer = 100.0 * w_err / max(words, 1)
    wer_caseless = 100.0 * w_err_caseless / max(words, 1)
    line_acc = 100.0 * exact / max(n, 1)
    if cfg.word_images:
        wacc, wacc_caseless = line_acc, 100.0 * exact_caseless / max(n, 1)
    else:
        wacc, wacc_caseless = 100.0 - wer, 100.0 - wer_caseless
    return {
        "cer": 100.0 * c_err / max(chars, 1),
        "wer": wer,
        "wacc": wacc,
        "wacc_caseless": wacc_caseless,
        "line_acc": line_acc,
        "n": n,
        "chars": chars,
        "words": words,
    }
