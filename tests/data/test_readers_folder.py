"""Folder (image + .txt) and TSV manifest readers, and the registry's empty-text filter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from htr_ssl.data.readers import READERS, read_dataset
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.folder import read_folder, read_tsv


def test_folder_pairs_images_with_txt(tmp_path: Path, write_image, caplog) -> None:
    write_image(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("  hello world \n", encoding="utf-8")
    write_image(tmp_path / "sub" / "b.JPG")
    (tmp_path / "sub" / "b.txt").write_text("Grüße", encoding="utf-8")
    write_image(tmp_path / "c.tif")  # no transcription
    with caplog.at_level(logging.WARNING):
        samples = {s.id: s for s in read_folder(tmp_path)}
    assert {k: s.text for k, s in samples.items()} == {"a": "hello world", "sub/b": "Grüße"}
    assert "1 images without a same-stem .txt" in caplog.text
    assert samples["sub/b"].load().shape == (20, 60)


def test_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"datasets/page/README\.md"):
        read_folder(tmp_path / "nope")


MANIFEST = """\
# path<TAB>text<TAB>writer<TAB>split
img/a.png\tfirst line\tw1\ttrain
img/b.png\tsecond  line\tw2\tvalidation
img/c.png\tthird
img/d.png\t
"""


def _manifest(tmp_path: Path, write_image, extra: str = "") -> Path:
    for name in "abcd":
        write_image(tmp_path / "img" / f"{name}.png")
    path = tmp_path / "lines.tsv"
    path.write_text(MANIFEST + extra, encoding="utf-8")
    return path


def test_tsv_rows(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_tsv(_manifest(tmp_path, write_image))}
    assert (samples["img/a"].writer, samples["img/a"].split) == ("w1", "train")
    assert (samples["img/b"].text, samples["img/b"].split) == ("second  line", "val")
    assert (samples["img/c"].writer, samples["img/c"].split) == ("", "")
    assert samples["img/a"].image_path == tmp_path / "img" / "a.png"


def test_tsv_malformed_row_line_number(tmp_path: Path, write_image) -> None:
    path = _manifest(tmp_path, write_image, extra="img/e.png has no tab\n")
    with pytest.raises(DatasetFormatError, match=r"lines\.tsv:6"):
        read_tsv(path)


def test_tsv_missing_image(tmp_path: Path, write_image, caplog) -> None:
    path = _manifest(tmp_path, write_image)
    (tmp_path / "img" / "c.png").unlink()
    with caplog.at_level(logging.WARNING):
        assert len(read_tsv(path)) == 3
    assert "c.png" in caplog.text
    with pytest.raises(DatasetNotFoundError, match=r"c\.png"):
        read_tsv(path, strict=True)


def test_read_dataset_drops_empty(tmp_path: Path, write_image, caplog) -> None:
    path = _manifest(tmp_path, write_image)
    with caplog.at_level(logging.WARNING):
        samples = read_dataset("tsv", path)
    assert [s.id for s in samples] == ["img/a", "img/b", "img/c"]
    assert "dropped 1 samples with empty transcriptions" in caplog.text


def test_registry_names() -> None:
    assert set(READERS) == {
        "iam", "cvl", "rimes", "rimes_icdar2011", "rimes_words", "pagexml", "alto", "folder",
        "tsv", "images",
    }


def test_texts_are_nfc_normalized(tmp_path: Path, write_image) -> None:
    write_image(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("cafe\u0301", encoding="utf-8")  # e + combining acute
    assert read_dataset("folder", tmp_path)[0].text == "caf\u00e9"


def test_images_reader_needs_no_text(tmp_path: Path, write_image) -> None:
    """Pretraining reads scans without transcriptions; the first folder level is the document."""
    from htr_ssl.data.readers import read_dataset

    write_image(tmp_path / "doc1" / "l1.png")
    write_image(tmp_path / "doc1" / "l2.png")
    write_image(tmp_path / "loose.png")
    samples = read_dataset("images", tmp_path, unlabeled=True)
    assert [(s.id, s.writer, s.text) for s in samples] == [
        ("doc1/l1", "doc1", ""), ("doc1/l2", "doc1", ""), ("loose", "", "")]
    assert read_dataset("images", tmp_path) == []  # labeled use drops text-less samples
