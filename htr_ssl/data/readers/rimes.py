"""RIMES in three distributions: RIMES-2011 line images, ICDAR 2011 page XML and word snippets.

ICDAR 2011 XML (structure as used by public RIMES converters; assumed, not checked against the
official DTD): `DocumentList > SinglePage@FileName > Paragraph > Line`, each `Line` carrying
`Value` (text) and `Left Top Right Bottom` (page pixels; Right/Bottom taken as end-exclusive).
`FileName` is resolved against the XML's folder and its parent, by full relative path first
and then by base name, so both `images/x.png` layouts and flat folders work.

ICDAR 2011 words: one ground-truth file per split at the root, each row `<image> <word>` with
the image path relative to that split's snippet folder (e.g. `lot_1/00001_L/00001_L_0_0.tiff`).
The snippet folders are also accepted without their `*snippets_icdar/` wrapper.
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
    format_error,
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
# split -> (ground-truth file names, the first found wins; image folders, the first found wins)
WORD_FILES = {
    "train": (("groundtruth_training_icdar2011.txt",),
              ("trainingsnippets_icdar/training_WR", "training_WR")),
    "val": (("ground_truth_validation_icdar2011.txt",),
            ("validationsnippets_icdar/testdataset_ICDAR", "testdataset_ICDAR")),
    # The distribution misspells the test file; the corrected name is accepted too.
    "test": (("grount_truth_test_icdar2011.txt", "ground_truth_test_icdar2011.txt"),
             ("data_test",)),
}


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


def read_rimes_words(root: Path, strict: bool = False) -> list[Sample]:
    """ICDAR 2011 RIMES words: one `<image> <word>` file per split; no writer ids are given."""
    root = Path(root)
    found = {split: gt for split, (names, _) in WORD_FILES.items()
             if (gt := next((root / n for n in names if (root / n).is_file()), None))}
    if not found:
        raise missing("RIMES words", root, " or ".join(n[0] for n, _ in WORD_FILES.values()),
                      README)
    samples: list[Sample] = []
    for split, (names, folders) in WORD_FILES.items():
        if split not in found:
            log.warning("RIMES words: %s not found; no %s words", root / names[0], split)
            continue
        folder = next((root / f for f in folders if (root / f).is_dir()), None)
        if folder is None:
            raise missing("RIMES words", root,
                          f"{folders[0]}/ (the images {found[split].name} lists)", README)
        samples += _word_rows(found[split], folder, split)
    return keep_existing(samples, strict)


def _word_rows(gt: Path, folder: Path, split: str) -> list[Sample]:
    """Ids start with the snippet folder's name, so splits that reuse relative paths
    (`lot_1/...`) never share an id."""
    samples = []
    for lineno, row in data_rows(gt):
        fields = row.split(maxsplit=1)
        if len(fields) < 2:
            raise format_error(gt, lineno, "expected `<image path> <word>`", row,
                               fix="add the word after the image path, or delete that line")
        rel, text = fields
        sid = f"{folder.name}/{Path(rel).with_suffix('').as_posix()}"
        samples.append(Sample(sid, folder / rel, text.strip(), split=split))
    return samples
