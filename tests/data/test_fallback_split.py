"""The split of a dataset without one: writer-disjoint when its writers allow, otherwise by
lines with a warning that says so and how to choose; never an empty training split."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.pipeline import DataConfig, load_samples, prepare
from htr_ssl.data.readers.common import DatasetFormatError
from htr_ssl.data.sample import Sample
from htr_ssl.data.splits import (
    apply_split_file,
    fallback_split,
    line_split,
    write_ids,
    writer_disjoint_split,
)


def _samples(sizes: dict[str, int]) -> list[Sample]:
    return [Sample(f"{w}/{i:04d}", Path(f"{w}/{i}.png"), "t", writer=w)
            for w, n in sizes.items() for i in range(n)]


def _counts(samples: list[Sample]) -> tuple[int, int, int]:
    c = Counter(s.split for s in samples)
    return c["train"], c["val"], c["test"]


def test_many_writers_give_the_writer_disjoint_split_silently(caplog):
    samples = _samples({f"w{k}": 10 for k in range(20)})
    with caplog.at_level(logging.WARNING):
        out, disjoint = fallback_split(samples, 0.1, 0.2, seed=0)
    assert disjoint and out == writer_disjoint_split(samples, 0.1, 0.2, seed=0)
    assert _counts(out) == (140, 20, 40) and not caplog.text


def test_two_collections_are_split_by_lines_and_the_warning_says_how_to_choose(caplog):
    """Two sub-folders used to give '0 train / 4728 val / 2238 test'."""
    samples = _samples({"letters": 473, "diaries": 224})
    assert _counts(writer_disjoint_split(samples, 0.1, 0.2))[0] == 0  # the old failure
    with caplog.at_level(logging.WARNING):
        out, disjoint = fallback_split(samples, 0.1, 0.2, seed=0, where="images at scans/")
    assert not disjoint
    assert _counts(out) == (488, 70, 139)
    for said in ("images at scans/ has 2 writers/documents (diaries, letters)",
                 "which would give 0 train / 473 val / 224 test",
                 "The lines were split instead: 488 train / 70 val / 139 test",
                 "data.val_frac", "split column", "data.split_file"):
        assert said in caplog.text


def test_one_transcribed_page_gets_every_split(tmp_path, caplog):
    """One PAGE page with 4 lines of text used to give '0 train / 0 val / 4 test'."""
    Image.fromarray(np.full((100, 200), 30, np.uint8)).save(tmp_path / "p.png")
    lines = "".join(
        f'<TextLine id="l{k}"><Coords points="5,{5 + 20 * k} 150,{5 + 20 * k} '
        f'150,{20 + 20 * k} 5,{20 + 20 * k}"/>'
        + (f"<TextEquiv><Unicode>line {k}</Unicode></TextEquiv>" if k < 4 else "")
        + "</TextLine>" for k in range(5))
    (tmp_path / "p.xml").write_text(
        '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">'
        f'<Page imageFilename="p.png"><TextRegion id="r">{lines}</TextRegion></Page></PcGts>')
    with caplog.at_level(logging.WARNING):
        data = prepare(DataConfig(name="pagexml", root=str(tmp_path), height=32,
                                  crop_cache=None))
    assert (len(data.train), len(data.val), len(data.test)) == (2, 1, 1)
    assert "dropped 1 samples with empty transcriptions (e.g. p/l4)" in caplog.text
    assert "has 1 writers/documents (p)" in caplog.text


@pytest.mark.parametrize(("n", "val", "test", "expected"), [
    (1, 0.1, 0.2, (1, 0, 0)), (2, 0.1, 0.2, (1, 0, 1)), (3, 0.1, 0.2, (1, 1, 1)),
    (100, 0.1, 0.2, (70, 10, 20)), (10, 0.0, 0.0, (10, 0, 0)), (10, 0.1, 0.0, (9, 1, 0))])
def test_line_split_never_empties_train(n, val, test, expected):
    out = line_split(_samples({"w": n}), val, test, seed=0)
    assert _counts(out) == expected
    assert out == line_split(_samples({"w": n}), val, test, seed=0)


def test_split_file_sets_every_split(tmp_path, tiny_lines, caplog):
    first = load_samples(DataConfig(name="folder", root=str(tiny_lines)))
    write_ids(first[1:], tmp_path / "splits.tsv")  # a run's record, one sample left out
    with caplog.at_level(logging.WARNING):
        again = load_samples(DataConfig(name="folder", root=str(tiny_lines),
                                        split_file=str(tmp_path / "splits.tsv")))
    assert again == first[1:]
    assert f"does not list 1 samples (e.g. {first[0].id})" in caplog.text
    (tmp_path / "bad.tsv").write_text("000\ttraining\n")
    with pytest.raises(DatasetFormatError, match=r"bad\.tsv:1: expected id<TAB>train"):
        apply_split_file(first, tmp_path / "bad.tsv")
