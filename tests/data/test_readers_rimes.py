"""RIMES readers: the 2011 line distribution and the ICDAR 2011 page XML."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.rimes import read_rimes, read_rimes_icdar2011

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
