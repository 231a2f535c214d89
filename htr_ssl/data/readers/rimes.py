"""RIMES in its two distributions: RIMES-2011 line images, and the ICDAR 2011 page XML.

ICDAR 2011 XML (structure as used by public RIMES converters; assumed, not checked against the
official DTD): `DocumentList > SinglePage@FileName > Paragraph > Line`, each `Line` carrying
`Value` (text) and `Left Top Right Bottom` (page pixels; Right/Bottom taken as end-exclusive).
`FileName` is resolved against the XML's folder and its parent, by full relative path first
and then by base name, so both `images/x.png` layouts and flat folders work.
"""

from __future__ import annotations

import logging
from pathlib import Path

from htr_ssl.data.readers.common import (
    DatasetFormatError,
    count_skipped,
    data_rows,
    descendants,
    find_image,
    keep_existing,
    missing,
    parse_xml,
    pixel,
    read_text,
    require,
    resolve_image,
)
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

README = "datasets/rimes/README.md"
SET_FILES = {"train": "TrainLines.txt", "val": "ValidationLines.txt", "test": "TestLines.txt"}
BOX_KEYS = ("Left", "Top", "Right", "Bottom")
ICDAR_FILES = {"train": "training_2011.xml", "test": "eval_2011_annotated.xml"}


def read_rimes(root: Path, strict: bool = False) -> list[Sample]:
    """RIMES-2011 lines: `Images/<id>.jpg` + `Transcriptions/<id>.txt`, splits from `Sets/`."""
    root = Path(root)
    trans_dir = require(root, "Transcriptions", "RIMES", README)
    ids = _set_ids(root)
    if ids is None:
        log.info("RIMES: no Sets/ folder; every transcription read, split left empty")
        ids = [(p.stem, "") for p in sorted(trans_dir.glob("*.txt"))]
    samples, untexted = [], 0
    for sid, split in ids:
        txt = trans_dir / f"{sid}.txt"
        if not txt.is_file():
            if strict:
                raise missing("RIMES", root, f"Transcriptions/{sid}.txt", README)
            untexted += 1
            continue
        text = " ".join(read_text(txt).split())
        image = find_image(root / "Images", sid, ".jpg")
        samples.append(Sample(sid, image, text, writer=sid.split("_")[0], split=split))
    count_skipped(untexted, "ids without a Transcriptions/<id>.txt", root)
    return keep_existing(samples, strict)


def _set_ids(root: Path) -> list[tuple[str, str]] | None:
    sets = root / "Sets"
    if not sets.is_dir():
        return None
    out = []
    for split, name in SET_FILES.items():
        path = sets / name
        if not path.is_file():
            log.warning("RIMES: %s not found; no %s lines", path, split)
            continue
        out += [(row.strip(), split) for _, row in data_rows(path)]
    return out


def read_rimes_icdar2011(root: Path, strict: bool = False) -> list[Sample]:
    """ICDAR 2011 RIMES: line boxes from `training_2011.xml` / `eval_2011_annotated.xml`."""
    root = Path(root)
    found = {k: root / f for k, f in ICDAR_FILES.items() if (root / f).is_file()}
    if not found:
        raise missing("RIMES ICDAR 2011", root, " or ".join(ICDAR_FILES.values()), README)
    samples: list[Sample] = []
    for split, xml in found.items():
        samples += _icdar_pages(xml, split)
    return keep_existing(samples, strict)


def _icdar_pages(xml: Path, split: str) -> list[Sample]:
    samples = []
    for p, page in enumerate(descendants(parse_xml(xml), "SinglePage"), start=1):
        name = page.get("FileName")
        if not name:
            raise DatasetFormatError(f"{xml}: SinglePage #{p} has no FileName attribute. Fix: "
                                     "name its page image in FileName=...")
        image = resolve_image(name, xml)
        stem = Path(name.replace("\\", "/")).stem
        for n, line in enumerate(descendants(page, "Line")):
            try:
                x0, y0, x1, y1 = (pixel(line.get(k, "")) for k in BOX_KEYS)
            except ValueError as err:
                raise DatasetFormatError(
                    f"{xml}: SinglePage #{p} ({name}) Line #{n + 1}: Left/Top/Right/Bottom must "
                    f"be numbers, got {dict(line.attrib)}. Fix: correct that Line element"
                ) from err
            text = " ".join(line.get("Value", "").split())
            samples.append(
                Sample(f"{stem}/{n:03d}", image, text, stem, split, bbox=(x0, y0, x1, y1))
            )
    return samples
