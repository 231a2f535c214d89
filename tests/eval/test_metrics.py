import pytest

from htr_ssl.eval.metrics import MetricConfig, compute_metrics, sample_cer, tokenize


def test_tokenization_modes():
    assert tokenize("Mr. Brown, hi") == ["Mr.", "Brown,", "hi"]
    assert tokenize("Mr. Brown, hi", "punct") == ["Mr", ".", "Brown", ",", "hi"]
    with pytest.raises(ValueError):
        tokenize("x", "chars")


def test_hand_computed_line_metrics():
    refs = ["the cat sat", "a dog"]
    hyps = ["the bat sat", "a dog"]
    m = compute_metrics(refs, hyps)
    # 1 char error over 11 + 5 = 16 chars; 1 word error over 5 words; 1 of 2 lines exact
    assert m["cer"] == pytest.approx(100 / 16)
    assert m["wer"] == pytest.approx(20.0)
    assert m["wacc"] == pytest.approx(80.0)
    assert m["line_acc"] == pytest.approx(50.0)
    assert (m["n"], m["chars"], m["words"]) == (2, 16, 5)


def test_summed_not_averaged():
    # per-line CERs 100% and 0% would average to 50%; summed over the set it is 1/11
    m = compute_metrics(["a", "bbbbbbbbbb"], ["", "bbbbbbbbbb"])
    assert m["cer"] == pytest.approx(100 / 11)


def test_word_images_and_caseless():
    refs, hyps = ["Hello", "world", "A"], ["hello", "world", "b"]
    m = compute_metrics(refs, hyps, MetricConfig(word_images=True))
    assert m["wacc"] == pytest.approx(100 / 3)
    assert m["wacc_caseless"] == pytest.approx(200 / 3)
    lines = compute_metrics(["Mr. Brown"], ["Mr Brown"], MetricConfig(tokenization="punct"))
    assert lines["wer"] == pytest.approx(100 / 3)  # "." deleted: 1 of 3 tokens


def test_sample_cer_and_length_mismatch():
    assert sample_cer("abcd", "abed") == 25.0
    assert sample_cer("", "xy") == 200.0
    with pytest.raises(ValueError):
        compute_metrics(["a"], [])
