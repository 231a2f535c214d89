"""CVL 1.1 reader: PAGE-2010 AttrRegion transcriptions, word names, non-UTF-8 XML."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from htr_ssl.data.readers.common import DatasetNotFoundError
from htr_ssl.data.readers.cvl import read_cvl

NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2010-03-19"


def _xml(page: str, lines: dict[str, list[str]]) -> str:
    body = ""
    for lid, words in lines.items():
        ws = "".join(
            f'<AttrRegion id="{lid}-{i}" attrType="1" text="{w}">'
            f'<minAreaRect><Point x="1" y="1"/></minAreaRect></AttrRegion>'
            for i, w in enumerate(words)
        )
        body += f'<AttrRegion id="{lid}" attrType="2" minAreaSize="0">{ws}</AttrRegion>'
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{NS}"><Page imageFilename='
        f'"{page}.tif"><AttrRegion id="{page}" attrType="3">{body}</AttrRegion></Page></PcGts>'
    )


def _cvl(root: Path, write_image) -> Path:
    train = root / "trainset"
    (train / "xml").mkdir(parents=True)
    (train / "xml" / "0052-1_attributes.xml").write_text(
        _xml("0052-1", {"0052-1-0": ["Imagine", "a", "vast"], "0052-1-1": ["sheet"]}),
        encoding="utf-8",
    )
    write_image(train / "lines" / "0052" / "0052-1-0.tif")
    write_image(train / "lines" / "0052" / "0052-1-1.tif")
    write_image(train / "lines" / "0052" / "0052-1-9.tif")  # no transcription
    write_image(train / "words" / "0052" / "0052-1-0-0-Imagine.tif", width=30)
    write_image(train / "words" / "0052" / "0052-1-0-3-well-known.tif", width=30)
    test = root / "testset"
    (test / "xml").mkdir(parents=True)
    # declares UTF-8 but holds latin-1 bytes, as some CVL files do
    (test / "xml" / "0001-2_attributes.xml").write_bytes(
        _xml("0001-2", {"0001-2-0": ["Herr", "Müller"]}).encode("latin-1")
    )
    write_image(test / "lines" / "0001" / "0001-2-0.tif")
    return root


def test_lines_from_xml_with_splits_and_writers(tmp_path: Path, write_image, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        samples = {s.id: s for s in read_cvl(_cvl(tmp_path, write_image))}
    assert set(samples) == {"0052-1-0", "0052-1-1", "0001-2-0"}
    assert samples["0052-1-0"].text == "Imagine a vast"
    assert (samples["0052-1-0"].writer, samples["0052-1-0"].split) == ("0052", "train")
    assert "1 line images without a transcription" in caplog.text
    assert samples["0052-1-0"].load().shape == (20, 60)


def test_latin1_xml_is_decoded(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_cvl(_cvl(tmp_path, write_image))}
    assert samples["0001-2-0"].text == "Herr Müller"
    assert (samples["0001-2-0"].writer, samples["0001-2-0"].split) == ("0001", "test")


def test_words_text_from_file_name(tmp_path: Path, write_image) -> None:
    samples = {s.id: s for s in read_cvl(_cvl(tmp_path, write_image), granularity="words")}
    assert samples["0052-1-0-0"].text == "Imagine"
    assert samples["0052-1-0-3"].text == "well-known"
    assert samples["0052-1-0-3"].writer == "0052"


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"trainset/lines.*datasets/cvl/README\.md"):
        read_cvl(tmp_path / "cvl")
