"""CVL Database 1.1: `{trainset,testset}/{lines,words,xml}/`, read as distributed.

Line texts come from the PAGE-2010 `xml/*.xml` files: an `AttrRegion` with attrType="2" is a
line (its id names the line image), its attrType="1" descendants are words whose `text`
attributes, joined by single spaces in document order, give the line. Word images carry their
text in the file name (`0052-1-0-0-Imagine.tif`: everything after the 4th dash).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from htr_ssl.data.readers.common import (
    IMAGE_EXTS,
    DatasetFormatError,
    count_skipped,
    descendants,
    missing,
    parse_xml_files,
)
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

README = "datasets/cvl/README.md"
SETS = {"trainset": "train", "testset": "test"}


def read_cvl(
    root: Path, granularity: Literal["lines", "words"] = "lines", strict: bool = False
) -> list[Sample]:
    """CVL lines (text from the XML) or words (text from the file name), split by set."""
    if granularity not in ("lines", "words"):
        raise ValueError(f"CVL granularity must be 'lines' or 'words', not {granularity!r}")
    root = Path(root)
    sets = [s for s in SETS if (root / s / granularity).is_dir()]
    if not sets:
        raise missing("CVL", root, f"trainset/{granularity}/ or testset/{granularity}/", README)
    samples: list[Sample] = []
    for name in sets:
        folder = root / name
        reader = _lines if granularity == "lines" else _words
        samples += reader(folder, SETS[name], strict)
    return samples


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def line_texts(xml_dir: Path, strict: bool = False) -> dict[str, str]:
    """Line id -> transcription from every CVL XML file in `xml_dir`."""
    texts: dict[str, str] = {}
    for _, tree in parse_xml_files(sorted(xml_dir.glob("*.xml")), strict):
        for region in descendants(tree, "AttrRegion"):
            if region.get("attrType") != "2" or not region.get("id"):
                continue
            words = [
                w.get("text", "").strip()
                for w in descendants(region, "AttrRegion")
                if w.get("attrType") == "1"
            ]
            texts[region.get("id", "")] = " ".join(w for w in words if w)
    return texts


def _lines(folder: Path, split: str, strict: bool) -> list[Sample]:
    xml_dir = folder / "xml"
    if not xml_dir.is_dir():
        raise missing("CVL", folder, "xml/ (line transcriptions)", README)
    texts = line_texts(xml_dir, strict)
    samples, untexted = [], 0
    for image in _images(folder / "lines"):
        text = texts.get(image.stem)
        if text is None:
            untexted += 1
            log.debug("CVL: no transcription for line image %s", image)
            continue
        writer = image.stem.split("-")[0]
        samples.append(Sample(image.stem, image, text, writer=writer, split=split))
    count_skipped(untexted, "line images without a transcription in xml/", folder)
    return samples


def _words(folder: Path, split: str, strict: bool) -> list[Sample]:
    samples, bad = [], 0
    for image in _images(folder / "words"):
        fields = image.stem.split("-", 4)
        if len(fields) < 5:
            if strict:
                raise DatasetFormatError(f"{image}: name is not writer-page-line-word-text")
            bad += 1
            continue
        sid = "-".join(fields[:4])
        samples.append(Sample(sid, image, fields[4], writer=fields[0], split=split))
    count_skipped(bad, "word images whose name does not carry the text", folder)
    return samples
