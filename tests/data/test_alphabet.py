from pathlib import Path

import pytest

from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.oov import apply_oov_policy, report_oov
from htr_ssl.data.sample import Sample


def _s(i: int, text: str) -> Sample:
    return Sample(id=f"s{i}", image_path=Path("x.png"), text=text)


def test_ids_layout_and_roundtrip(tmp_path):
    a = Alphabet.from_texts(["ab c", "cab!"])
    assert a.chars == (" ", "!", "a", "b", "c")
    assert a.blank == 0 and a.encode("a")[0] >= 1
    assert (a.sos, a.eos, a.ctc_size, a.attn_size) == (6, 7, 6, 8)
    ids = a.encode("cab !")
    assert a.decode(ids) == "cab !"
    assert a.decode([0, *ids, a.sos, a.eos]) == "cab !"
    a.save(tmp_path / "alphabet.json")
    assert Alphabet.load(tmp_path / "alphabet.json") == a
    assert Alphabet.from_dict(a.to_dict()) == a


def test_unicode_normalized():
    # "e" + combining acute and precomposed "é" give one symbol
    a = Alphabet.from_texts(["e\u0301", "\u00e9"])
    assert a.chars == ("\u00e9",)


def test_encode_names_unknown_chars_and_sample():
    a = Alphabet.from_texts(["abc"])
    with pytest.raises(OutOfAlphabetError, match=r"\['x', 'z'\].*sample s7"):
        a.encode("axbz", sample_id="s7")


def test_oov_error_lists_characters_and_ids():
    a = Alphabet.from_texts(["abc"])
    samples = [_s(0, "abc"), _s(1, "abx"), _s(2, "xyz")]
    with pytest.raises(OutOfAlphabetError) as err:
        apply_oov_policy(samples, a, "error")
    msg = str(err.value)
    assert "'x': 2 samples, e.g. s1, s2" in msg and "'y'" in msg and "data.oov=drop" in msg


def test_oov_drop_and_map(caplog):
    a = Alphabet.from_texts(["abc "])
    samples = [_s(0, "abc"), _s(1, "abé"), _s(2, "é")]
    assert [s.id for s in apply_oov_policy(samples, a, "drop")] == ["s0"]
    mapped = apply_oov_policy(samples, a, "map", {"é": "c"})
    assert [s.text for s in mapped] == ["abc", "abc", "c"]
    assert "mapped 2" in caplog.text
    # unmapped characters are deleted; a sample left empty is dropped
    assert [s.text for s in apply_oov_policy(samples, a, "map")] == ["abc", "ab"]
    with pytest.raises(ValueError, match="unknown oov policy"):
        apply_oov_policy(samples, a, "ignore")
    with pytest.raises(ValueError, match="unknown oov policy"):  # a typo fails even on clean data
        apply_oov_policy(samples[:1], a, "ignore")


def test_report_oov_counts_and_names(caplog):
    a = Alphabet.from_texts(["abc"])
    assert report_oov([_s(0, "abx"), _s(1, "xxz"), _s(2, "abc")], a, "test") == {"x": 2, "z": 1}
    assert "'x' (2 samples, e.g. s0)" in caplog.text


def test_recognizer_heads_use_the_alphabets_id_layout():
    """One id layout: the heads' sizes and <sos>/<eos> are the Alphabet's."""
    from htr_ssl.models.encoders import EncoderConfig
    from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

    alphabet = Alphabet(tuple("abcde"))
    cfg = RecognizerConfig(encoder=EncoderConfig("small", 32, lstm_hidden=16),
                           decoder=DecoderConfig("hybrid", attn_hidden=16, attn_emb=8))
    model = build_recognizer(cfg, alphabet)
    assert (model.sos, model.eos) == (alphabet.sos, alphabet.eos) == (6, 7)
    assert model.ctc.proj.out_features == alphabet.ctc_size
    assert model.attention.n_classes == alphabet.attn_size
