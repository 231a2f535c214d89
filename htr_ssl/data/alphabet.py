"""Characters <-> ids. CTC blank is id 0; characters are 1..n; attention adds <sos>/<eos>.

The same ids serve both decoders: a CTC head has `ctc_size` outputs (blank + characters), an
attention decoder has `attn_size` outputs (characters + <sos> + <eos>, with 0 as padding).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BLANK = "<blank>"
SOS = "<sos>"
EOS = "<eos>"

class OutOfAlphabetError(ValueError):
    """Text contains characters the alphabet does not know."""


@dataclass(frozen=True)
class TokenIds:
    """The id layout for `n_chars` characters, the one definition both the Alphabet and the
    Recognizer's heads use: blank / padding 0, characters 1..n, then <sos>, <eos>."""

    n_chars: int

    blank = pad = 0

    @property
    def sos(self) -> int:
        return self.n_chars + 1

    @property
    def eos(self) -> int:
        return self.n_chars + 2

    @property
    def ctc_size(self) -> int:
        """CTC outputs: blank + characters."""
        return self.n_chars + 1

    @property
    def attn_size(self) -> int:
        """Attention outputs: padding + characters + <sos> + <eos>."""
        return self.n_chars + 3


@dataclass(frozen=True)
class Alphabet:
    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("alphabet characters must be unique")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    # ids -------------------------------------------------------------------------------
    @property
    def ids(self) -> TokenIds:
        return TokenIds(len(self.chars))

    @property
    def blank(self) -> int:
        return self.ids.blank

    @property
    def pad(self) -> int:
        return self.ids.pad

    @property
    def sos(self) -> int:
        return self.ids.sos

    @property
    def eos(self) -> int:
        return self.ids.eos

    @property
    def ctc_size(self) -> int:
        return self.ids.ctc_size

    @property
    def attn_size(self) -> int:
        return self.ids.attn_size

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
