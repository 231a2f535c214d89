"""The built-in English corpus, IAM-style tokenisation, and per-form line sampling.

The text ships with the package (`corpus.txt`, one sentence a line, written for this project)
so generation needs no download. Tokens follow IAM's ascii ground truth: punctuation and the
possessive ``'s`` are tokens of their own, so a line's text has spaces around punctuation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import numpy as np

# Abbreviations keep their full stop (IAM writes "Mr." as one token).
_TOKEN = re.compile(
    r"(?:Mr|Mrs|Dr|St)\.|'s\b|[A-Za-z0-9]+(?:-[A-Za-z0-9]+|'(?!s\b)[A-Za-z0-9]+)*|[^\sA-Za-z0-9]"
)
_CLOSING = set(".,;:!?)") | {"'s"}
_OPENING = set("(")

Unit = list[str]  # tokens written without a full space between them, e.g. ["word", ","]


@lru_cache(maxsize=1)
def load_sentences() -> tuple[str, ...]:
    """The packaged sentences, in file order."""
    text = resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")
    return tuple(s.strip() for s in text.splitlines() if s.strip())


def tokenize(sentence: str) -> list[str]:
    """Split a sentence into IAM-style tokens."""
    return _TOKEN.findall(sentence)


def to_units(tokens: list[str]) -> list[Unit]:
    """Group tokens into written units: closing punctuation joins the word before it, opening
    punctuation the word after it; straight quotes alternate between opening and closing."""
    units: list[Unit] = []
    pending: list[str] = []
    quote_open = False
    for tok in tokens:
        if tok == '"':
            quote_open = not quote_open
            closing = not quote_open
        else:
            closing = tok in _CLOSING
        if closing and units and not pending:
            units[-1].append(tok)
        elif tok in _OPENING or tok == '"':
            pending.append(tok)
        else:
            units.append([*pending, tok])
            pending = []
    if pending:
        units.append(pending)
    return units


def sample_form_lines(
    rng: np.random.Generator, n_lines: int, min_words: int = 3, max_words: int = 8
) -> list[list[Unit]]:
    """`n_lines` lines of running text (consecutive sentences from a random start), each of
    `min_words`..`max_words` written units, like a paragraph copied onto an IAM form."""
    sentences = load_sentences()
    pos = int(rng.integers(len(sentences)))
    stream: list[Unit] = []
    lines: list[list[Unit]] = []
    while len(lines) < n_lines:
        want = int(rng.integers(min_words, max_words + 1))
        while len(stream) < want:
            stream.extend(to_units(tokenize(sentences[pos % len(sentences)])))
            pos += 1
        lines.append(stream[:want])
        stream = stream[want:]
    return lines


def line_tokens(units: list[Unit]) -> list[str]:
    """The flat token list of one line (the words of words.txt, in order)."""
    return [tok for unit in units for tok in unit]
