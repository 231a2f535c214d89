"""Never train on what you test on: splits are checked for shared ids, images and writers, and
the labeled fraction comes from the training split only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from htr_ssl.data.pipeline import DataConfig, prepare
from htr_ssl.data.readers.common import DatasetFormatError
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.sample import Sample
from htr_ssl.data.splits import SplitLeakError, check_splits, writer_disjoint_split


def _s(sid: str, split: str, writer: str = "", image: str = "") -> Sample:
    return Sample(sid, Path(image or f"/data/{sid}.png"), "text", writer, split)


def test_clean_split_is_summarized():
    samples = [_s("a", "train", "w1"), _s("b", "train", "w1"), _s("c", "val", "w2"),
               _s("d", "test", "w3")]
    assert check_splits(samples, writer_disjoint=True) == (
        "split check: 2 train / 1 val / 1 test, no shared ids, no shared images, "
        "no shared writers")


@pytest.mark.parametrize(("samples", "named"), [
    ([_s("a01-1", "train"), _s("a01-1", "test")], "'a01-1' in train and test"),
    ([_s("a", "train", image="/d/x.png"), _s("b", "val", image="/d/x.png")],
     "'/d/x.png' in train and val"),
    ([_s("a", "train", "w7"), _s("b", "test", "w7")], "'w7' in train and test"),
], ids=["id", "image", "writer"])
def test_overlap_is_refused_with_examples(samples, named):
    with pytest.raises(SplitLeakError, match="Fix: correct the split files") as err:
        check_splits(samples, writer_disjoint=True)
    assert named in str(err.value)


def test_official_split_reports_shared_writers_without_refusing():
    samples = [_s("a", "train", "w7"), _s("b", "test", "w7"), _s("c", "test", "w8")]
    summary = check_splits(samples, writer_disjoint=False)
    assert "1 writers in more than one split" in summary
    assert "does not promise writer independence" in summary


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_writer_disjoint_fallback_passes_its_own_check(seed):
    samples = [_s(f"s{i}", "", f"w{i % 9}") for i in range(60)]
    assert "no shared writers" in check_splits(writer_disjoint_split(samples, 0.2, 0.2, seed),
                                               writer_disjoint=True)


def test_prepare_logs_the_split_check(tiny_lines, caplog):
    with caplog.at_level(logging.INFO):
        prepare(DataConfig(name="folder", root=str(tiny_lines), height=32))
    assert "split check: 21 train / 3 val / 6 test, no shared ids, no shared images" in caplog.text


def test_prepare_refuses_a_manifest_that_lists_an_image_in_train_and_test(tiny_lines, tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"{tiny_lines}/000.png\tcat dog\tw1\ttrain\n"
                        f"{tiny_lines}/001.png\tsun hat\tw2\tval\n"
                        f"{tiny_lines}/000.png\tcat dog\tw3\ttest\n")
    with pytest.raises(SplitLeakError, match=r"000\.png.* in train and test"):
        prepare(DataConfig(name="tsv", root=str(manifest), height=32))


def test_iam_form_in_two_split_lists_is_an_error(tmp_path, write_image):
    (tmp_path / "ascii").mkdir()
    (tmp_path / "ascii" / "lines.txt").write_text(
        "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE\n")
    write_image(tmp_path / "lines" / "a01" / "a01-000u" / "a01-000u-00.png")
    (tmp_path / "train.uttlist").write_text("a01-000u\n")
    (tmp_path / "validation.uttlist").write_text("b01-000\n")
    (tmp_path / "test.uttlist").write_text("a01-000u\n")
    with pytest.raises(DatasetFormatError, match=r"'a01-000u' in both .*train\.uttlist"):
        read_iam(tmp_path)


@pytest.mark.parametrize("labels", [0.1, 0.5, 1.0, 5])
def test_labels_come_from_the_training_split_only(tiny_lines, tmp_path, labels):
    run = tmp_path / "run"
    data = prepare(DataConfig(name="folder", root=str(tiny_lines), height=32, labels=labels),
                   run)
    rows = [line.split("\t") for line in (run / "splits.tsv").read_text().splitlines()]
    train_ids = {sid for sid, split, _ in rows if split == "train"}
    held_out = {sid for sid, split, _ in rows if split != "train"}
    labeled = [line.split("\t")[0] for line in (run / "labeled_ids.tsv").read_text().splitlines()]
    assert labeled == [s.id for s in data.train]
    assert set(labeled) <= train_ids and not set(labeled) & held_out
    assert len(labeled) == (labels if labels > 1 else max(1, round(labels * len(train_ids))))
    assert {s.split for s in data.train} == {"train"}
    assert not {s.id for s in data.val + data.test} & set(labeled)
