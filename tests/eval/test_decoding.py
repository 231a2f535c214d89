"""CTC decoding: best path on hand-made paths, lexicon correction, a KenLM bigram LM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.eval.decoding import CTCBeamDecoder, ctc_greedy, ctc_tokens, write_lexicon

ALPHABET = Alphabet(tuple(" abdehlopqrw"))


def path_logits(path: str, alphabet: Alphabet = ALPHABET, soft: dict | None = None
                ) -> torch.Tensor:
    """(1, T, C) logits whose best path is `path` ('_' = blank). `soft` maps a frame index to
    {char: probability} to make that frame ambiguous."""
    probs = torch.full((len(path), alphabet.ctc_size), 1e-4)
    for t, ch in enumerate(path):
        probs[t, 0 if ch == "_" else alphabet.encode(ch)[0]] = 1.0
    for t, dist in (soft or {}).items():
        probs[t] = 1e-4
        for ch, p in dist.items():
            probs[t, 0 if ch == "_" else alphabet.encode(ch)[0]] = p
    return (probs / probs.sum(-1, keepdim=True)).log()[None]


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    ab = Alphabet(("a", "b"))
    a, b = 1, 2
    logits = torch.nn.functional.one_hot(torch.tensor([[a, a, 0, a, b, b], [b, 0, 0, 0, 0, 0]]),
                                         3).float()
    assert ctc_greedy(logits, torch.tensor([6, 6])) == [[a, a, b], [b]]
    assert ab.decode(ctc_greedy(logits, torch.tensor([6, 6]))[0]) == "aab"
    assert ctc_greedy(logits, torch.tensor([2, 0])) == [[a], []]  # lengths cut the path


def test_tokens_map_space_to_separator_and_add_one_without_space() -> None:
    assert ctc_tokens(ALPHABET)[:3] == ["<blank>", "|", "a"]
    no_space = Alphabet(("a", "|"))
    assert ctc_tokens(no_space) == ["<blank>", "a", "<U+007C>", "|"]


def test_beam_without_lexicon_reads_the_best_path() -> None:
    logits = path_logits("hh_e_ll_l_pp_ _ww_oo_r_l_dd")
    assert CTCBeamDecoder(ALPHABET, beam_size=5).decode_text(logits) == ["hellp world"]


def test_lexicon_turns_a_near_miss_into_a_word(tmp_path: Path) -> None:
    logits = path_logits("hh_e_ll_l_pp_ _ww_oo_r_l_dd")
    assert ALPHABET.decode(ctc_greedy(logits, torch.tensor([logits.shape[1]]))[0]) == \
        "hellp world"
    lexicon = tmp_path / "lexicon.txt"
    assert write_lexicon(["hello", "world", "hello", "z?"], ALPHABET, lexicon) == 2
    assert lexicon.read_text().splitlines()[0] == "hello h e l l o |"
    for lex in (lexicon, ["hello", "world"]):
        decoder = CTCBeamDecoder(ALPHABET, beam_size=10, lexicon=lex)
        assert decoder.decode_text(logits) == ["hello world"]


def test_lexicon_without_space_in_alphabet() -> None:
    words = Alphabet(tuple("ehlop"))
    logits = path_logits("hh_e_ll_l_pp", words)
    decoder = CTCBeamDecoder(words, beam_size=10, lexicon=["hello", "hop"])
    assert decoder.decode_text(logits) == ["hello"]


ARPA = """\\data\\
ngram 1=6
ngram 2=5

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.3\thello\t-0.3
-4.0\thelp\t-0.3
-0.7\tworld\t-0.3

\\2-grams:
-0.1\t<s> hello
-3.0\t<s> help
-0.2\thello world
-0.1\tworld </s>
-0.5\thello </s>

\\end\\
"""


@pytest.fixture
def bigram_lm(tmp_path: Path) -> Path:
    path = tmp_path / "lm.arpa"
    path.write_text(ARPA)
    return path


def test_bigram_lm_changes_an_ambiguous_reading(bigram_lm: Path) -> None:
    """Frames say "help" (0.55) a bit more than "hello" (0.45); the LM knows better."""
    logits = path_logits("h_e_l_lo_", soft={6: {"l": 0.45, "p": 0.55},
                                             7: {"o": 0.45, "_": 0.55}})
    lexicon = ["hello", "help", "world"]
    plain = CTCBeamDecoder(ALPHABET, beam_size=10, lexicon=lexicon)
    assert plain.decode_text(logits) == ["help"]
    with_lm = CTCBeamDecoder(ALPHABET, beam_size=10, lexicon=lexicon, lm=bigram_lm,
                             lm_weight=1.0)
    assert with_lm.decode_text(logits) == ["hello"]
    two_words = path_logits("hh_e_ll_l_oo_ _ww_oo_r_l_dd")
    assert with_lm.decode_text(two_words) == ["hello world"]
    assert with_lm(two_words) == [ALPHABET.encode("hello world")]


CHAR_ARPA = """\\data\\
ngram 1=6
ngram 2=3

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.5\th\t-0.3
-0.5\to\t-0.3
-3.0\tp\t-0.3

\\2-grams:
-0.1\t<s> h
-0.1\th o
-0.1\to </s>

\\end\\
"""


def test_character_lm_without_lexicon(tmp_path: Path) -> None:
    """Lexicon-free decoding with a character n-gram (guards torchaudio's LM-dictionary order)."""
    lm = tmp_path / "chars.arpa"
    lm.write_text(CHAR_ARPA)
    logits = path_logits("h_o_", soft={2: {"o": 0.45, "p": 0.55}})
    assert CTCBeamDecoder(ALPHABET, beam_size=10).decode_text(logits) == ["hp"]
    assert CTCBeamDecoder(ALPHABET, beam_size=10, lm=lm, lm_weight=1.0).decode_text(logits) == \
        ["ho"]
