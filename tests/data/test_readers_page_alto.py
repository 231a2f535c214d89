"""PAGE XML and ALTO readers: polygon masks, line-level text, version-agnostic tags."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.readers import read_dataset
from htr_ssl.data.readers.alto import read_alto
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError, parse_xml
from htr_ssl.data.readers.pagexml import read_pagexml

PAGE_2013 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"
PAGE_2019 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
INK = 30


def _page_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((100, 200), INK, dtype=np.uint8)).save(path)


def _pagexml(ns: str, image: str, lines: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{ns}"><Metadata/>'
        f'<Page imageFilename="{image}" imageWidth="200" imageHeight="100">'
        f'<TextRegion id="r1"><Coords points="0,0 199,0 199,99 0,99"/>{lines}'
        f"<TextEquiv><Unicode>region text</Unicode></TextEquiv></TextRegion></Page></PcGts>"
    )


LINES_2013 = """
<TextLine id="l1"><Coords points="10,10 50,10 10,40"/><Baseline points="10,38 50,38"/>
  <Word id="w1"><Coords points="10,10 20,10 20,20"/><TextEquiv><Unicode>word</Unicode></TextEquiv>
  </Word>
  <TextEquiv index="1"><Unicode>second reading</Unicode></TextEquiv>
  <TextEquiv index="0"><Unicode>the  line</Unicode></TextEquiv>
</TextLine>
<TextLine id="l2"><Coords points="60,50 120,50 120,80 60,80"/>
  <TextEquiv><Unicode></Unicode></TextEquiv></TextLine>
"""
LINES_2010 = """
<TextLine id="t1"><Coords><Point x="5" y="5"/><Point x="40" y="5"/><Point x="40" y="25"/>
  <Point x="5" y="25"/></Coords><TextEquiv><Unicode>old style</Unicode></TextEquiv></TextLine>
"""


def _export(root: Path) -> Path:
    """A Transkribus-like export: images at the top, PAGE files in page/, plus a mets.xml."""
    _page_image(root / "doc1.png")
    _page_image(root / "doc2.jpg")
    (root / "page").mkdir(parents=True)
    (root / "page" / "doc1.xml").write_text(_pagexml(PAGE_2013, "doc1.png", LINES_2013))
    (root / "page" / "doc2.xml").write_text(_pagexml(PAGE_2019, "doc2.jpg", LINES_2010))
    (root / "mets.xml").write_text('<mets xmlns="http://www.loc.gov/METS/"/>')
    return root


def test_pagexml_lines_text_and_ids(tmp_path: Path, caplog) -> None:
    samples = {s.id: s for s in read_pagexml(_export(tmp_path))}
    assert set(samples) == {"doc1/l1", "doc1/l2", "doc2/t1"}
    line = samples["doc1/l1"]
    assert (line.text, line.writer, line.bbox) == ("the line", "doc1", (10, 10, 51, 41))
    assert line.image_path == tmp_path / "doc1.png"
    assert samples["doc2/t1"].text == "old style"
    assert samples["doc1/l2"].text == ""  # segmenter output: a line without text
    # training and scoring leave it out and say so; pretraining keeps it
    with caplog.at_level(logging.WARNING):
        labeled = read_dataset("pagexml", tmp_path)
    assert [s.id for s in labeled] == ["doc1/l1", "doc2/t1"]
    assert "dropped 1 samples with empty transcriptions (e.g. doc1/l2)" in caplog.text
    assert len(read_dataset("pagexml", tmp_path, unlabeled=True)) == 3


def test_degenerate_polygons_are_named_and_skipped(tmp_path: Path, caplog) -> None:
    _page_image(tmp_path / "p.png")
    lines = ('<TextLine id="dot"><Coords points="5,5 5,5 5,5"/></TextLine>'
             '<TextLine id="bar"><Coords points="5,5 9,5 5,5 9,5"/></TextLine>'
             '<TextLine id="ok"><Coords points="10,10 50,10 50,40"/></TextLine>')
    (tmp_path / "p.xml").write_text(_pagexml(PAGE_2019, "p.png", lines))
    with caplog.at_level(logging.WARNING):
        assert [s.id for s in read_pagexml(tmp_path)] == ["p/ok"]
    assert "skipped 2 PAGE TextLines without a usable Coords polygon" in caplog.text
    assert "p.xml line dot: its Coords polygon has 1 distinct points" in caplog.text
    assert "p.xml line bar: its Coords polygon has 2 distinct points" in caplog.text


def test_pagexml_polygon_masks_outside_pixels(tmp_path: Path) -> None:
    pixels = {s.id: s for s in read_pagexml(_export(tmp_path))}["doc1/l1"].load()
    assert pixels.shape == (31, 41)
    assert pixels[2, 2] == INK  # inside the triangle near its right angle
    assert pixels[28, 38] == 255  # beyond the hypotenuse: whitened


def test_pagexml_missing_image(tmp_path: Path, caplog) -> None:
    root = _export(tmp_path)
    (root / "doc2.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        assert [s.id for s in read_pagexml(root)] == ["doc1/l1", "doc1/l2"]
    assert "doc2.jpg" in caplog.text
    with pytest.raises(DatasetNotFoundError, match=r"doc2\.jpg"):
        read_pagexml(root, strict=True)


def test_pagexml_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"\*\.xml"):
        read_pagexml(tmp_path)


ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>{unit}</MeasurementUnit>
    <sourceImageInformation><fileName>scan.png</fileName></sourceImageInformation>
  </Description>
  <Layout><Page ID="p1" WIDTH="200" HEIGHT="100"><PrintSpace><TextBlock ID="b1">
    <TextLine ID="line1" HPOS="10" VPOS="20" WIDTH="100" HEIGHT="30" BASELINE="10 45 110 45">
      <String CONTENT="Dear" HPOS="10" VPOS="20" WIDTH="40" HEIGHT="30"/><SP/>
      <String CONTENT="Sir," HPOS="60" VPOS="20" WIDTH="40" HEIGHT="30"/><SP/>
      <String CONTENT="wel" HPOS="90" VPOS="20" WIDTH="10" HEIGHT="30"/><HYP CONTENT="-"/>
    </TextLine>
    <TextLine ID="line2" HPOS="0" VPOS="0" WIDTH="200" HEIGHT="100">
      <Shape><Polygon POINTS="{points}"/></Shape>
      <String CONTENT="shaped"/>
    </TextLine>
    <TextLine ID="line3" HPOS="0" VPOS="60" WIDTH="50" HEIGHT="20"/>
  </TextBlock></PrintSpace></Page></Layout>
</alto>
"""


@pytest.mark.parametrize("points", ["20,60 80,60 20,90", "20 60 80 60 20 90"])
def test_alto_box_and_polygon(tmp_path: Path, points: str) -> None:
    _page_image(tmp_path / "scan.png")
    (tmp_path / "scan.xml").write_text(ALTO.format(unit="pixel", points=points))
    samples = {s.id: s for s in read_alto(tmp_path)}
    assert set(samples) == {"scan/line1", "scan/line2", "scan/line3"}
    assert samples["scan/line3"].text == ""  # no String: kept for pretraining
    boxed, shaped = samples["scan/line1"], samples["scan/line2"]
    assert (boxed.text, boxed.bbox, boxed.polygon) == ("Dear Sir, wel-", (10, 20, 110, 50), None)
    assert (boxed.load() == INK).all()
    assert shaped.bbox == (20, 60, 81, 91)
    pixels = shaped.load()
    assert pixels[2, 2] == INK and pixels[28, 58] == 255


def test_alto_non_pixel_unit_skipped(tmp_path: Path, caplog) -> None:
    _page_image(tmp_path / "scan.png")
    (tmp_path / "scan.xml").write_text(ALTO.format(unit="mm10", points="1,1 5,1 1,5"))
    with caplog.at_level(logging.WARNING):
        assert read_alto(tmp_path) == []
    assert "mm10" in caplog.text


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "page.xml"
    bad.write_text("<PcGts>\n<Page>\n</PcGts>\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"page\.xml:3: not well-formed XML"):
        parse_xml(bad)
    # a non-UTF-8 file that is also broken is reported the same way
    bad.write_bytes("<PcGts>\n<a>M\u00fcller</b>\n</PcGts>\n".encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"page\.xml:2: not well-formed XML"):
        parse_xml(bad)
