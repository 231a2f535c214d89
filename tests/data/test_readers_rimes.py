"""RIMES readers: the 2011 line distribution, the ICDAR 2011 page XML and its word snippets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.rimes import read_rimes, read_rimes_icdar2011, read_rimes_words

IDS = {
    "train": ["train2011-150_000001", "train2011-150_000002"],
    "val": ["train2011-7_000001"],
    "test": ["eval2011-3_000004"],
}
SETS = {"train": "TrainLines.txt", "val": "ValidationLines.txt", "test": "TestLines.txt"}


def _rimes(root: Path, write_image) -> Path:
    (root / "Sets").mkdir(parents=True)
    (root / "Transcriptions").mkdir()
    for split, ids in IDS.items():
        (root / "Sets" / SETS[split]).write_text("\n".join(ids) + "\n")
        for sid in ids:
            (root / "Transcriptions" / f"{sid}.txt").write_text(f"Monsieur {sid[-1]},\n")
            write_image(root / "Images" / f"{sid}.jpg")
    return root


def test_lines_splits_writers_text(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_rimes(_rimes(tmp_path, write_image))}
    assert {k: s.split for k, s in samples.items()} == {
        sid: split for split, ids in IDS.items() for sid in ids
    }
    first = samples["train2011-150_000001"]
    assert (first.text, first.writer) == ("Monsieur 1,", "train2011-150")
    assert first.load().shape == (20, 60)


def test_lines_missing_image(tmp_path: Path, write_image, caplog) -> None:
    root = _rimes(tmp_path, write_image)
    (root / "Images" / "train2011-7_000001.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        assert len(read_rimes(root)) == 3
    assert "train2011-7_000001.jpg" in caplog.text
    with pytest.raises(DatasetNotFoundError):
        read_rimes(root, strict=True)


def test_lines_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="Transcriptions"):
        read_rimes(tmp_path / "rimes")


PAGE_XML = """<?xml version="1.0" encoding="utf-8"?>
<DocumentList>
  <SinglePage FileName="images/{name}.png">
    <Paragraph Left="5" Top="5" Right="190" Bottom="90">
      <Line Value="Madame, Monsieur" Left="10" Top="10" Right="110" Bottom="40"/>
      <Line Value="je vous écris" Left="{left}" Top="50" Right="180" Bottom="80"/>
    </Paragraph>
  </SinglePage>
</DocumentList>
"""


def _icdar(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    for name in ("train2011-0", "eval2011-5"):
        Image.fromarray(np.zeros((100, 200), dtype=np.uint8)).save(root / "images" / f"{name}.png")
    (root / "training_2011.xml").write_text(PAGE_XML.format(name="train2011-0", left=20))
    (root / "eval_2011_annotated.xml").write_text(PAGE_XML.format(name="eval2011-5", left=20))
    return root


def test_icdar2011_boxes_cropped_from_pages(tmp_path: Path) -> None:
    samples = read_rimes_icdar2011(_icdar(tmp_path))
    assert [(s.id, s.split) for s in samples] == [
        ("train2011-0/000", "train"), ("train2011-0/001", "train"),
        ("eval2011-5/000", "test"), ("eval2011-5/001", "test"),
    ]
    first, second = samples[:2]
    assert (first.text, first.writer, first.bbox) == ("Madame, Monsieur", "train2011-0",
                                                      (10, 10, 110, 40))
    assert second.text == "je vous écris"
    assert first.load().shape == (30, 100)


def test_icdar2011_bad_coordinate(tmp_path: Path) -> None:
    root = _icdar(tmp_path)
    (root / "training_2011.xml").write_text(PAGE_XML.format(name="train2011-0", left="x"))
    with pytest.raises(DatasetFormatError, match=r"training_2011\.xml.*Line #2"):
        read_rimes_icdar2011(root)


def test_icdar2011_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"training_2011\.xml"):
        read_rimes_icdar2011(tmp_path)


# The published word layout: split -> (ground-truth file, image folder, rows).
WORDS = {
    "train": ("groundtruth_training_icdar2011.txt", "trainingsnippets_icdar/training_WR",
              [("lot_1/00001_L/00001_L_0_0.tiff", "Madame"),
               ("lot_1/00001_L/00001_L_0_1.png", "été")]),
    "val": ("ground_truth_validation_icdar2011.txt", "validationsnippets_icdar/testdataset_ICDAR",
            [("lot_1/00001_L/00001_L_0_0.png", "Monsieur")]),
    "test": ("grount_truth_test_icdar2011.txt", "data_test", [("00007_L_2_3.png", "écris")]),
}


def _words(root: Path, write_image) -> Path:
    for split, (gt, folder, rows) in WORDS.items():
        for n, (rel, _) in enumerate(rows):
            write_image(root / folder / rel, width=30 + 10 * n)
        text = "\n\n".join(f"{rel} {word}" for rel, word in rows) + "\n"  # with a blank line
        (root / gt).write_text(text, encoding="utf-8-sig" if split == "train" else "utf-8")
    return root


def test_words_ids_texts_splits(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_rimes_words(_words(tmp_path, write_image))}
    assert {k: (s.text, s.split, s.writer) for k, s in samples.items()} == {
        "training_WR/lot_1/00001_L/00001_L_0_0": ("Madame", "train", ""),
        "training_WR/lot_1/00001_L/00001_L_0_1": ("été", "train", ""),
        "testdataset_ICDAR/lot_1/00001_L/00001_L_0_0": ("Monsieur", "val", ""),
        "data_test/00007_L_2_3": ("écris", "test", ""),
    }
    assert samples["training_WR/lot_1/00001_L/00001_L_0_1"].load().shape == (20, 40)
    assert samples["data_test/00007_L_2_3"].image_path == tmp_path / "data_test/00007_L_2_3.png"


def test_words_flat_folders_and_corrected_test_name(tmp_path: Path, write_image) -> None:
    root = _words(tmp_path, write_image)
    (root / "trainingsnippets_icdar").rename(root / "snippets")
    (root / "snippets" / "training_WR").rename(root / "training_WR")
    (root / "grount_truth_test_icdar2011.txt").rename(root / "ground_truth_test_icdar2011.txt")
    samples = read_rimes_words(root)
    assert sorted(s.split for s in samples) == ["test", "train", "train", "val"]
    assert samples[0].load().shape == (20, 30)


def test_words_split_check_passes(tmp_path: Path, write_image) -> None:
    from htr_ssl.data.pipeline import DataConfig, load_samples

    samples = load_samples(DataConfig(name="rimes_words", root=str(_words(tmp_path, write_image))))
    assert [s.split for s in samples] == ["train", "train", "val", "test"]


def test_words_malformed_line(tmp_path: Path, write_image) -> None:
    root = _words(tmp_path, write_image)
    (root / WORDS["val"][0]).write_text("a.png Bonjour\n\nlot_1/00001_L/00001_L_0_0.png\n")
    with pytest.raises(DatasetFormatError,
                       match=r"ground_truth_validation_icdar2011\.txt:3: expected `<image path> "
                             r"<word>`: 'lot_1/00001_L/00001_L_0_0\.png'\. Fix:"):
        read_rimes_words(root)


def test_words_missing_files(tmp_path: Path, write_image, caplog) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"groundtruth_training_icdar2011\.txt"):
        read_rimes_words(tmp_path / "rimes_words")
    root = _words(tmp_path, write_image)
    (root / WORDS["val"][0]).unlink()
    with caplog.at_level(logging.WARNING):
        assert {s.split for s in read_rimes_words(root)} == {"train", "test"}
    assert "ground_truth_validation_icdar2011.txt not found" in caplog.text
    (root / "data_test").rename(root / "elsewhere")
    with pytest.raises(DatasetNotFoundError, match=r"expected data_test/ \(the images "
                                                   r"grount_truth_test_icdar2011\.txt lists\)"):
        read_rimes_words(root)
