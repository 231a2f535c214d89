"""htr-ssl-predict on pages: every TextLine read and its text written into a copy of the
PAGE or ALTO file, which reads back through the project's readers with the same lines, order
and text; bad pages and lines are named and skipped, the rest is written; inputs untouched."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image
from recognizer_files import ALPHABET, reader

from htr_ssl.data.readers.alto import read_alto
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber
from htr_ssl.inference.inputs import collect
from htr_ssl.inference.predict import PredictOptions, plan, predict

REAL_PAGES = Path(__file__).parents[2] / ".." / "shared" / "data" / "cremma-mss-18" / "pages"
PAGE_2013 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"
PAGE_2019 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}


def digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_predict(inputs: list[str], fmt: str, out: Path) -> dict[str, int]:
    found = collect(inputs)
    opts = PredictOptions(format=fmt, out=str(out))
    return predict(Transcriber(reader(), ALPHABET, DecodeConfig()), 32, found, opts,
                   plan(found, opts), echo=lambda _: None)


def tsv_texts(path: Path) -> dict[tuple[str, str], str]:
    with path.open(encoding="utf-8", newline="") as f:
        return {(Path(r["path"]).stem, r["line"]): r["text"]
                for r in csv.DictReader(f, delimiter="\t")}


@pytest.mark.skipif(not REAL_PAGES.is_dir(), reason="../shared/data/cremma-mss-18 is absent")
def test_real_alto_pages_in_alto_copies_out(tmp_path):
    before = digest(REAL_PAGES)
    done = run_predict([str(REAL_PAGES)], "alto", tmp_path / "out")
    records = run_predict([str(REAL_PAGES)], "tsv", tmp_path / "lines.tsv")
    assert digest(REAL_PAGES) == before
    assert done["pages"] == 4 and done["lines"] == records["lines"] == 67
    source, copy = read_alto(REAL_PAGES), read_alto(tmp_path / "out")  # images: linked
    assert [s.id for s in copy] == [s.id for s in source]
    assert [(s.bbox, s.polygon) for s in copy] == [(s.bbox, s.polygon) for s in source]
    read = tsv_texts(tmp_path / "lines.tsv")
    assert [s.text for s in copy] == [" ".join(read[tuple(s.id.split("/"))].split())
                                      for s in source]
    assert sum(bool(s.text) for s in copy) > len(copy) / 2  # the reader does read something
    confidences = [float(e.get("WC")) for e in etree.parse(
        str(next((tmp_path / "out").glob("*.xml")))).iter("{*}String")]
    assert confidences and all(0 <= c <= 1 for c in confidences)


def page_set(folder: Path) -> Path:
    """A PAGE 2019 page with a line without text and one without usable Coords, a PAGE 2013
    page whose image is missing, an XML file that does not parse, and a METS file."""
    folder.mkdir()
    Image.fromarray(np.full((100, 300), 255, np.uint8)).save(folder / "a.png")
    region = ('<TextRegion id="r"><Coords points="0,0 299,0 299,99 0,99"/>'
              '<TextLine id="l1"><Coords points="10,10 290,10 290,45 10,45"/>'
              "<TextEquiv><Unicode>old</Unicode></TextEquiv></TextLine>"
              '<TextLine id="l2"><Coords points="10,50 290,50 290,90 10,90"/></TextLine>'
              '<TextLine id="l3"><Coords points="7,7 7,7 7,7"/></TextLine></TextRegion>')
    for name, ns, image in (("a", PAGE_2019, "a.png"), ("b", PAGE_2013, "b.png")):
        (folder / f"{name}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="{ns}"><Metadata/>'
            f'<Page imageFilename="{image}" imageWidth="300" imageHeight="100">{region}'
            "</Page></PcGts>", encoding="utf-8")
    (folder / "c.xml").write_text("<PcGts>\n<Page>\n</PcGts>\n")
    (folder / "mets.xml").write_text('<mets xmlns="http://www.loc.gov/METS/"/>')
    return folder


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "htr_ssl.cli.predict", *args], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=300)


def test_page_copies_skip_what_cannot_be_read_and_write_the_rest(reader_checkpoint, tmp_path):
    pages = page_set(tmp_path / "pages")
    before = digest(pages)
    proc = cli(f"checkpoint={reader_checkpoint}", f"inputs=[{pages}]", "format=page",
               "out=out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    for named in (f"{pages / 'b.xml'}: its page image 'b.png' is not there",
                  f"{pages / 'c.xml'}:3: not well-formed XML",
                  f"{pages / 'a.xml'} line l3: its Coords polygon has 1 distinct points",
                  "written: out (2 lines, 1 page files); 3 pages or lines skipped"):
        assert named in said, said
    assert "Traceback" not in said and "mets.xml" not in said
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.xml"]
    assert (tmp_path / "out" / "a.png").is_symlink()
    back = read_pagexml(tmp_path / "out")
    assert [s.id for s in back] == ["a/l1", "a/l2"]
    printed = dict(line.split("\t") for line in proc.stdout.splitlines() if "\t" in line)
    assert [s.text for s in back] == [" ".join(printed[f"{pages / 'a.xml'} line {lid}"].split())
                                      for lid in ("l1", "l2")]
    equivs = etree.parse(str(tmp_path / "out" / "a.xml")).findall(".//{*}TextLine/{*}TextEquiv")
    assert len(equivs) == 2 and all(0 <= float(e.get("conf")) <= 1 for e in equivs)
    assert digest(pages) == before


@pytest.mark.parametrize(("args", "message"), [
    (["format=page", "out=pages"], "is the input folder"),
    (["format=page", "out=pages/recognized"], "is inside the input folder"),
    (["format=alto", "out=out"], "is PAGE, not ALTO. Fix: format=page"),
    (["format=page"], "give the folder for them, out=FOLDER"),
    (["format=xml", "out=out"], "format='xml'; use one of tsv, jsonl, txt, page, alto"),
])
def test_outputs_that_would_replace_or_mix_with_inputs_are_refused(
        reader_checkpoint, tmp_path, args, message):
    pages = page_set(tmp_path / "pages")
    (pages / "c.xml").unlink()
    before = digest(pages)
    proc = cli(f"checkpoint={reader_checkpoint}", "inputs=[pages]", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and digest(pages) == before


def test_any_file_name_through_an_inputs_file(reader_checkpoint, tmp_path):
    odd = tmp_path / "scans, [1] été's.png"
    Image.fromarray(np.full((32, 120), 255, np.uint8)).save(odd)
    (tmp_path / "list.txt").write_text(f"{odd}\n\n", encoding="utf-8")
    proc = cli(f"checkpoint={reader_checkpoint}", "inputs_file=list.txt", "format=jsonl",
               "out=lines.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "lines.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert record["path"] == str(odd) and record["line"] is None
    assert 0 <= record["confidence"] <= 1 and len(record["words"]) == len(record["text"].split())
