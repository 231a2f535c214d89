"""IAM reader on a fabricated copy of the distributed layout."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from htr_ssl.data.readers import read_dataset
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.iam import read_iam

LINES = """\
#--- lines.txt ---------------------------------------------------------------#
# format: a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from
#
a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from
a01-000u-01 er 156 19 395 932 1850 105 nominating|any|more|Labour
a01-000x-00 ok 182 25 375 705 1797 89 A|MOVE|to|stop
b02-100-00 ok 170 10 300 700 1500 90 unlisted|form
"""
WORDS = """\
# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
a01-000u-00-00 ok 154 1 408 768 27 51 AT A
a01-000u-00-01 ok 154 1 507 766 213 48 NN MOVE it
a01-000u-00-02 er 154 1 796 764 70 50 TO to
"""
FORMS = "# forms.txt\na01-000u 000 2 prt 7 5 52 36\nb02-100 042 2 prt 7 5 52 36\n"


def _iam(root: Path, write_image, splits: bool = True) -> Path:
    (root / "ascii").mkdir(parents=True)
    (root / "ascii" / "lines.txt").write_text(LINES)
    (root / "ascii" / "words.txt").write_text(WORDS)
    (root / "ascii" / "forms.txt").write_text(FORMS)
    (root / "xml").mkdir()
    (root / "xml" / "a01-000x.xml").write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<form id="a01-000x" writer-id="001"/>\n'
    )
    for sid in ("a01-000u-00", "a01-000u-01", "a01-000x-00", "b02-100-00"):
        form = "-".join(sid.split("-")[:2])
        write_image(root / "lines" / sid[:3] / form / f"{sid}.png")
    for sid in ("a01-000u-00-00", "a01-000u-00-01", "a01-000u-00-02"):
        write_image(root / "words" / "a01" / "a01-000u" / f"{sid}.png", width=30)
    if splits:
        (root / "train.uttlist").write_text("a01-000u\n")
        (root / "validation.uttlist").write_text("# comment\n\na01-000x\n")
        (root / "test.uttlist").write_text("c03-000a\n")
    return root


def test_lines_text_writer_split(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_iam(_iam(tmp_path, write_image))}
    # 'er' row dropped, b02-100 is in no split list and is dropped too
    assert set(samples) == {"a01-000u-00", "a01-000x-00"}
    first = samples["a01-000u-00"]
    assert first.text == "A MOVE to stop Mr. Gaitskell from"
    assert (first.writer, first.split) == ("000", "train")
    assert (samples["a01-000x-00"].writer, samples["a01-000x-00"].split) == ("001", "val")
    assert first.load().shape == (20, 60)


def test_keep_err_and_no_split_files(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_iam(_iam(tmp_path, write_image, splits=False), keep_err=True)}
    assert set(samples) == {"a01-000u-00", "a01-000u-01", "a01-000x-00", "b02-100-00"}
    assert all(s.split == "" for s in samples.values())
    assert samples["b02-100-00"].writer == "042"


def test_split_dir(tmp_path: Path, write_image) -> None:
    root = _iam(tmp_path / "iam", write_image, splits=False)
    split_dir = tmp_path / "aachen"
    split_dir.mkdir()
    (split_dir / "train.uttlist").write_text("b02-100\n")
    (split_dir / "test.uttlist").write_text("a01-000u\n")
    samples = {s.id: s.split for s in read_iam(root, split_dir=split_dir)}
    assert samples == {"b02-100-00": "train", "a01-000u-00": "test"}
    with pytest.raises(DatasetNotFoundError, match="uttlist"):
        read_iam(root, split_dir=tmp_path / "nowhere")


def test_words_have_ten_fields_and_text_keeps_spaces(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_iam(_iam(tmp_path, write_image), granularity="words")}
    assert set(samples) == {"a01-000u-00-00", "a01-000u-00-01"}
    assert samples["a01-000u-00-01"].text == "MOVE it"
    assert samples["a01-000u-00-00"].image_path.parts[-3:] == (
        "a01", "a01-000u", "a01-000u-00-00.png"
    )


def test_missing_image_warns_or_raises(tmp_path: Path, write_image, caplog) -> None:
    root = _iam(tmp_path, write_image)
    (root / "lines" / "a01" / "a01-000x" / "a01-000x-00.png").unlink()
    with caplog.at_level(logging.WARNING):
        samples = read_iam(root)
    assert [s.id for s in samples] == ["a01-000u-00"]
    assert "a01-000x-00.png" in caplog.text
    with pytest.raises(DatasetNotFoundError, match="a01-000x-00"):
        read_iam(root, strict=True)


def test_malformed_row_names_file_and_line(tmp_path: Path, write_image) -> None:
    root = _iam(tmp_path, write_image)
    (root / "ascii" / "lines.txt").write_text(LINES + "a01-000u-02 ok 154 19\n")
    with pytest.raises(DatasetFormatError, match=r"lines\.txt:8"):
        read_iam(root)


def test_flag_spellings(tmp_path: Path, write_image) -> None:
    root = _iam(tmp_path, write_image)
    lines = (root / "ascii" / "lines.txt").read_text()
    (root / "ascii" / "lines.txt").write_text(lines.replace("a01-000u-01 er ", "a01-000u-01 err "))
    assert len(read_iam(root, keep_err=False)) == 2
    (root / "ascii" / "lines.txt").write_text(lines.replace("a01-000u-01 er ", "a01-000u-01 bad "))
    with pytest.raises(DatasetFormatError, match=r"lines\.txt:5: segmentation flag"):
        read_iam(root)


def test_missing_root_names_expected_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ascii/lines\.txt.*datasets/iam/README\.md"):
        read_iam(tmp_path / "absent")


def test_registry_reads_iam(tmp_path: Path, write_image) -> None:
    assert len(read_dataset("iam", _iam(tmp_path, write_image))) == 2
    with pytest.raises(ValueError, match="known: alto, cvl, folder, iam"):
        read_dataset("iamm", tmp_path)
