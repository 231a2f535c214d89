"""CTC decoding: greedy best path, and beam search with a lexicon and/or an n-gram LM.

The beam decoder wraps torchaudio's ``ctc_decoder`` (flashlight-text), the decoder PyLaia and
kraken users ask for. Flashlight thinks in speech terms, so the alphabet is translated:

- token list = one name per CTC output, in id order: ``<blank>``, then every character;
- the space character becomes the word-separator ("silence") token ``|`` (a real ``|`` in the
  alphabet, and any other whitespace, is renamed ``<U+007C>``-style); an alphabet without a
  space (word images) gets an extra, never-emitted separator column, because flashlight insists
  on having one;
- a lexicon line is ``word c h a r s |`` (the separator ends each word when the alphabet has a
  space; without one, words are spelled without it);
- a KenLM model (ARPA or binary) is word-level when a lexicon is given, otherwise it must be a
  character-level model over the token names (``|`` for space).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.ctc import ctc_greedy

log = logging.getLogger(__name__)

__all__ = ["CTCBeamDecoder", "ctc_greedy", "ctc_tokens", "write_lexicon"]

BLANK_TOKEN = "<blank>"
UNK_WORD = "<unk>"
SEPARATOR = "|"


def _token_name(char: str) -> str:
    """Flashlight reads whitespace-separated files, so whitespace gets a printable name."""
    if char == " ":
        return SEPARATOR
    if char.isspace() or char == "|":
        return f"<U+{ord(char):04X}>"
    return char


def ctc_tokens(alphabet: Alphabet) -> list[str]:
    """Flashlight token names for CTC outputs 0..n (plus a trailing separator if no space)."""
    tokens = [BLANK_TOKEN] + [_token_name(c) for c in alphabet.chars]
    if " " not in alphabet:
        tokens.append(SEPARATOR)
    return tokens


def spell(word: str, alphabet: Alphabet) -> list[str] | None:
    """A word's lexicon spelling, or None if it has characters the alphabet lacks."""
    if any(c not in alphabet or c.isspace() for c in word) or not word:
        return None
    spelling = [_token_name(c) for c in word]
    return [*spelling, SEPARATOR] if " " in alphabet else spelling


def write_lexicon(words: Iterable[str], alphabet: Alphabet, path: str | Path) -> int:
    """Write a flashlight lexicon (``word c h a r s |`` per line); returns the words written.

    Words with characters outside the alphabet cannot be decoded, so they are skipped and
    counted in a warning rather than failing the decoder build.
    """
    seen: set[str] = set()
    skipped = 0
    lines = []
    for word in words:
        word = word.strip()
        if not word or word in seen:
            continue
        spelling = spell(word, alphabet)
        if spelling is None:
            skipped += 1
            continue
        seen.add(word)
        lines.append(f"{word} {' '.join(spelling)}\n")
    if skipped:
        log.warning("lexicon: skipped %d words with characters outside the alphabet", skipped)
    Path(path).write_text("".join(lines), encoding="utf-8")
    return len(lines)


class CTCBeamDecoder:
    """Beam search over CTC log-probabilities with an optional lexicon and KenLM language model.

    ``lexicon`` is either a flashlight lexicon file or an iterable of words (written to a
    temporary lexicon file). ``lm`` is a KenLM ARPA or binary path. ``lm_weight`` scales the LM
    log-probability, ``word_score`` is added per word (positive favours more words).
    """

    def __init__(
        self,
        alphabet: Alphabet,
        beam_size: int = 10,
        lexicon: str | Path | Iterable[str] | None = None,
        lm: str | Path | None = None,
        lm_weight: float = 0.5,
        word_score: float = 0.0,
        beam_threshold: float = 50.0,
        sil_score: float = 0.0,
        nbest: int = 1,
    ) -> None:
        from torchaudio.models.decoder import ctc_decoder  # heavy import, only when used

        self.alphabet = alphabet
        self.tokens = ctc_tokens(alphabet)
        self._space_id = alphabet.encode(" ")[0] if " " in alphabet else None
        self._tmp = tempfile.TemporaryDirectory(prefix="htr_ssl_decoder_")
        lexicon_path: str | None = None
        if lexicon is not None and not isinstance(lexicon, (str, Path)):
            lexicon_path = str(Path(self._tmp.name) / "lexicon.txt")
            if write_lexicon(lexicon, alphabet, lexicon_path) == 0:
                raise ValueError("none of the lexicon words can be spelled with the alphabet")
        elif lexicon is not None:
            lexicon_path = str(lexicon)
        self.lexicon = lexicon_path is not None
        lm_dict: str | None = None
        if lexicon_path is None and lm is not None:
            # Lexicon-free decoding scores token ids with the LM, but torchaudio builds the LM's
            # word dictionary from an unordered dict, so its ids do not match the token ids and
            # every character becomes <unk>. An explicit dictionary in token order fixes that.
            lm_dict = str(Path(self._tmp.name) / "lm_dict.txt")
            Path(lm_dict).write_text("\n".join([*self.tokens, UNK_WORD]) + "\n",
                                     encoding="utf-8")
        self.decoder = ctc_decoder(
            lexicon=lexicon_path,
            tokens=self.tokens,
            lm=str(lm) if lm is not None else None,
            lm_dict=lm_dict,
            nbest=nbest,
            beam_size=beam_size,
            beam_threshold=beam_threshold,
            lm_weight=lm_weight,
            word_score=word_score,
            sil_score=sil_score,
            blank_token=BLANK_TOKEN,
            sil_token=SEPARATOR,
            unk_word=UNK_WORD,
        )

    def _emissions(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, T, n+1) scores -> contiguous fp32 CPU log-probs, with the separator column added
        (at a log-probability that never wins) when the alphabet has no space."""
        logp = logits.detach().float().log_softmax(-1).cpu()
        if len(self.tokens) > logp.shape[-1]:
            never = torch.full((*logp.shape[:2], 1), -1e4)
            logp = torch.cat([logp, never], dim=-1)
        if logp.shape[-1] != len(self.tokens):
            raise ValueError(f"logits have {logp.shape[-1]} classes, the alphabet needs "
                             f"{len(self.alphabet) + 1} (blank + characters)")
        return logp.contiguous()

    def _to_ids(self, tokens: list[int]) -> list[int]:
        """Flashlight token indices -> character ids; separators -> single inner spaces."""
        n = len(self.alphabet)
        ids: list[int] = []
        for t in tokens:
            if 1 <= t <= n and t != self._space_id:
                ids.append(t)
            elif t == self._space_id and ids and ids[-1] != self._space_id:
                ids.append(t)  # separator of an alphabet with a space
        while ids and ids[-1] == self._space_id:
            ids.pop()
        return ids

    def __call__(self, logits: torch.Tensor, lengths: torch.Tensor | None = None
                 ) -> list[list[int]]:
        """Decode CTC logits (B, T, n+1) (log-softmax applied here) -> character id lists."""
        lens = None if lengths is None else lengths.detach().cpu().long()
        hyps = self.decoder(self._emissions(logits), lens)
        return [self._hyp_ids(h[0]) if h else [] for h in hyps]

    def _hyp_ids(self, hyp) -> list[int]:
        """With a lexicon, only complete lexicon words count (the token path can end inside a
        word the beam never finished); without one, the token path is the answer."""
        if not self.lexicon:
            return self._to_ids(hyp.tokens.tolist())
        text = " ".join(hyp.words)
        return self.alphabet.encode("".join(c for c in text if c in self.alphabet))

    def decode_text(self, logits: torch.Tensor, lengths: torch.Tensor | None = None
                    ) -> list[str]:
        """Like ``__call__`` but returns strings."""
        return [self.alphabet.decode(ids) for ids in self(logits, lengths)]
