"""Characters <-> ids. CTC blank is id 0; characters are 1..n; attention adds <sos>/<eos>.

The same ids serve both decoders: a CTC head has `ctc_size` outputs (blank + characters), an
attention decoder has `attn_size` outputs (characters + <sos> + <eos>, with 0 as padding).
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

BLANK = "<blank>"
SOS = "<sos>"
EOS = "<eos>"

OovPolicy = Literal["error", "drop", "map"]


class OutOfAlphabetError(ValueError):
    """Text contains characters the alphabet does not know."""


@dataclass(frozen=True)
class Alphabet:
    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("alphabet characters must be unique")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    # ids -------------------------------------------------------------------------------
    @property
    def blank(self) -> int:
        return 0

    @property
    def pad(self) -> int:
        return 0

    @property
    def sos(self) -> int:
        return len(self.chars) + 1

    @property
    def eos(self) -> int:
        return len(self.chars) + 2

    @property
    def ctc_size(self) -> int:
        return len(self.chars) + 1

    @property
    def attn_size(self) -> int:
        return len(self.chars) + 3

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index  # type: ignore[attr-defined]

    def tokens(self) -> list[str]:
        """Every id's token, in id order (blank, characters, <sos>, <eos>)."""
        return [BLANK, *self.chars, SOS, EOS]

    # coding ------------------------------------------------------------------------------
    def encode(self, text: str, sample_id: str = "") -> list[int]:
        index = self._index  # type: ignore[attr-defined]
        try:
            return [index[c] for c in text]
        except KeyError:
            missing = sorted({c for c in text if c not in index})
            where = f" in sample {sample_id}" if sample_id else ""
            raise OutOfAlphabetError(
                f"characters {missing!r}{where} are not in the alphabet; rebuild the alphabet "
                "or set data.oov=drop|map"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, skipping blank/padding and special tokens."""
        n = len(self.chars)
        return "".join(self.chars[i - 1] for i in ids if 1 <= i <= n)

    def missing(self, text: str) -> set[str]:
        return {c for c in text if c not in self}

    # construction and persistence ------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Alphabet:
        """Sorted set of every character (NFC-normalized) that appears in `texts`."""
        chars: set[str] = set()
        for t in texts:
            chars.update(unicodedata.normalize("NFC", t))
        return cls(tuple(sorted(chars)))

    def to_dict(self) -> dict:
        return {"chars": list(self.chars), "blank": 0, "sos": self.sos, "eos": self.eos}

    @classmethod
    def from_dict(cls, d: dict) -> Alphabet:
        return cls(tuple(d["chars"]))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1),
                              encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Alphabet:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def unknown_chars(samples: Sequence[Sample], alphabet: Alphabet) -> dict[str, list[str]]:
    """Each character outside the alphabet -> ids of the samples that contain it."""
    found: dict[str, list[str]] = {}
    for s in samples:
        for c in sorted(alphabet.missing(s.text)):
            found.setdefault(c, []).append(s.id)
    return found


def report_oov(samples: Sequence[Sample], alphabet: Alphabet, what: str) -> dict[str, int]:
    """Warn about characters a model with this alphabet can never output (they will count as
    errors). Evaluation needs no target ids, so this is a warning, not an error."""
    found = unknown_chars(samples, alphabet)
    if found:
        ranked = sorted(found.items(), key=lambda kv: -len(kv[1]))
        log.warning("%s: %d characters are not in the alphabet and can never be recognized "
                    "(they count as errors): %s", what, len(found), ", ".join(
                        f"{c!r} ({len(ids)} samples, e.g. {ids[0]})" for c, ids in ranked))
    return {c: len(ids) for c, ids in found.items()}


def apply_oov_policy(
    samples: Sequence[Sample],
    alphabet: Alphabet,
    policy: OovPolicy = "error",
    replacement: dict[str, str] | None = None,
) -> list[Sample]:
    """Deal with characters outside the alphabet.

    error: raise, naming every unknown character and (up to 10) sample ids per character.
    drop:  remove the samples that contain one, logging how many.
    map:   replace characters using `replacement` (unmapped ones are deleted), logging counts.
    """
    if policy not in ("error", "drop", "map"):
        raise ValueError(f"unknown oov policy {policy!r}; use error, drop or map")
    bad = unknown_chars(samples, alphabet)
    if not bad:
        return list(samples)
    if policy == "error":
        lines = [f"  {c!r}: {len(ids)} samples, e.g. {', '.join(ids[:10])}"
                 for c, ids in sorted(bad.items())]
        raise OutOfAlphabetError(
            "characters outside the alphabet:\n" + "\n".join(lines)
            + "\nFix: rebuild the alphabet from this data, or set data.oov=drop (skip those "
            "samples) or data.oov=map with data.oov_map={char: replacement}."
        )
    if policy == "drop":
        kept = [s for s in samples if not alphabet.missing(s.text)]
        log.warning("dropped %d samples with characters outside the alphabet: %s",
                    len(samples) - len(kept), "".join(sorted(bad)))
        return kept
    table = replacement or {}
    counts: Counter[str] = Counter()
    out = []
    for s in samples:
        miss = alphabet.missing(s.text)
        if not miss:
            out.append(s)
            continue
        text = "".join(
            (table.get(c, "") if c in miss else c) for c in s.text
        )
        counts.update(c for c in s.text if c in miss)
        text = "".join(c for c in text if c in alphabet)
        if text.strip():
            out.append(replace(s, text=text))
    log.warning("mapped %d out-of-alphabet characters (%s)", sum(counts.values()),
                ", ".join(f"{c!r}x{n}" for c, n in counts.most_common()))
    return out
