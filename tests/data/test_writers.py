"""Readings written into copies of PAGE (2013, 2019) and ALTO (v4, the real eScriptorium
pages of ../shared) read back through the project's own readers: same lines, same order, the
new text; everything else of the file and the input itself untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from htr_ssl.data.readers.alto import alto_doc, read_alto
from htr_ssl.data.readers.common import DatasetFormatError, parse_xml
from htr_ssl.data.readers.pagexml import page_doc, read_pagexml
from htr_ssl.data.writers import parse, write_copy
from htr_ssl.data.writers.alto import fill_alto
from htr_ssl.data.writers.pagexml import fill_pagexml
from htr_ssl.eval.confidence import Reading, Word

REAL_PAGES = Path(__file__).parents[2] / ".." / "shared" / "data" / "cremma-mss-18" / "pages"
PAGE_NS = {"2013": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15",
           "2019": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}


def reading(text: str, confidence: float = 0.5) -> Reading:
    return Reading(text, confidence, tuple(Word(w, 0.25 + 0.1 * i)
                                           for i, w in enumerate(text.split())))


def page_file(folder: Path, version: str) -> Path:
    """A PAGE page as Transkribus writes one: a prefixed namespace, a comment, an old reading
    with Words on one line, a line without text, a line without usable Coords."""
    path = folder / f"page{version}.xml"
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<pc:PcGts xmlns:pc="{PAGE_NS[version]}">\n'
        "  <pc:Metadata><pc:Creator>seg</pc:Creator><pc:LastChange>2020-01-01T00:00:00"
        "</pc:LastChange></pc:Metadata>\n"
        '  <pc:Page imageFilename="scan.png" imageWidth="200" imageHeight="100">\n'
        "    <!-- kept as is -->\n"
        '    <pc:TextRegion id="r1"><pc:Coords points="0,0 199,0 199,99 0,99"/>\n'
        '      <pc:TextLine id="a"><pc:Coords points="10,10 90,10 90,30 10,30"/>'
        '<pc:Baseline points="10,28 90,28"/>'
        '<pc:Word id="a_w"><pc:Coords points="10,10 20,10 20,20"/><pc:TextEquiv>'
        "<pc:Unicode>old</pc:Unicode></pc:TextEquiv></pc:Word>"
        "<pc:TextEquiv><pc:Unicode>old text</pc:Unicode></pc:TextEquiv>"
        '<pc:TextStyle fontSize="10"/></pc:TextLine>\n'
        '      <pc:TextLine id="b"><pc:Coords points="10,40 90,40 90,60 10,60"/></pc:TextLine>\n'
        '      <pc:TextLine id="c"><pc:Coords points="5,5 5,5 5,5"/></pc:TextLine>\n'
        "      <pc:TextEquiv><pc:Unicode>old text</pc:Unicode></pc:TextEquiv>\n"
        "    </pc:TextRegion>\n  </pc:Page>\n</pc:PcGts>\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("version", ["2013", "2019"])
def test_page_round_trip(tmp_path, version, write_image):
    write_image(tmp_path / "in" / "scan.png", 100, 200)
    source = page_file(tmp_path / "in", version)
    before = source.read_bytes()
    doc = page_doc(source, parse_xml(source))
    assert [s.id for s in doc.lines] == [f"page{version}/a", f"page{version}/b"]
    assert doc.skipped == ["line c: its Coords polygon has 1 distinct points, fewer than the "
                           "3 that enclose a line"]
    texts = {doc.order[0]: reading("neue Zeile", 0.91), doc.order[1]: reading("zweite", 0.4)}
    target = tmp_path / "in" / "out" / source.name
    write_copy(source, target, texts, fill_pagexml)
    assert source.read_bytes() == before
    back = {s.id: s.text for s in read_pagexml(target)}  # image found in the parent folder
    assert back == {f"page{version}/a": "neue Zeile", f"page{version}/b": "zweite"}
    root = etree.parse(str(target)).getroot()
    ns = {"pc": PAGE_NS[version]}
    assert root.prefix == "pc" and "kept as is" in target.read_text()
    line = root.find(".//pc:TextLine[@id='a']", ns)
    assert [etree.QName(c).localname for c in line] == ["Coords", "Baseline", "TextEquiv",
                                                        "TextStyle"]  # schema order, no Words
    assert line.find("pc:TextEquiv", ns).get("conf") == "0.9100"
    region = root.find(".//pc:TextRegion/pc:TextEquiv/pc:Unicode", ns)
    assert region.text == "neue Zeile\nzweite"
    assert root.find(".//pc:LastChange", ns).text != "2020-01-01T00:00:00"
    with pytest.raises(FileExistsError, match="does not overwrite"):
        write_copy(source, target, texts, fill_pagexml)
    with pytest.raises(FileExistsError, match="inputs are never modified"):
        write_copy(source, source, texts, fill_pagexml, overwrite=True)


@pytest.mark.skipif(not REAL_PAGES.is_dir(), reason="../shared/data/cremma-mss-18 is absent")
def test_alto_round_trip_on_real_escriptorium_pages(tmp_path):
    out = tmp_path / "out"
    for source in sorted(REAL_PAGES.glob("*.xml")):
        before = source.read_bytes()
        doc = alto_doc(source, parse_xml(source))
        assert len(doc.lines) > 10 and not doc.skipped
        # a new reading per line: the old words reversed, and one line left empty
        new = {k: reading(" ".join(s.text.split()[::-1])) for k, s in
               zip(doc.order, doc.lines, strict=True)}
        new[doc.order[0]] = reading("")
        write_copy(source, out / source.name, new, fill_alto)
        assert source.read_bytes() == before
        shutil.copy(doc.image, out / doc.image.name)  # the image beside the copy
        back = read_alto(out / source.name)
        assert [s.id for s in back] == [s.id for s in doc.lines]
        assert [s.text for s in back] == [new[k].text for k in doc.order]
        assert [(s.bbox, s.polygon) for s in back] == [(s.bbox, s.polygon) for s in doc.lines]
    tree = etree.parse(str(out / source.name))
    line = next(e for e in tree.iter() if isinstance(e.tag, str)
                and etree.QName(e).localname == "TextLine" and len(e) > 3)
    names = [etree.QName(c).localname for c in line]
    assert names[0] == "Shape" and names[1:4] == ["String", "SP", "String"]
    assert [c.get("WC") for c in line if etree.QName(c).localname == "String"][:2] == [
        "0.2500", "0.3500"]


def test_unparsable_xml_is_named(tmp_path):
    bad = tmp_path / "p.xml"
    bad.write_text("<PcGts>\n<Page>\n</PcGts>\n")
    with pytest.raises(DatasetFormatError, match=r"p\.xml:3: not well-formed XML"):
        parse(bad)
