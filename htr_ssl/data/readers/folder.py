"""Plain folders (image + same-stem .txt) and TSV manifests: the formats users make by hand."""

from __future__ import annotations

from pathlib import Path

from htr_ssl.data.readers.common import (
    IMAGE_EXTS,
    count_skipped,
    data_rows,
    format_error,
    keep_existing,
    missing,
    read_text,
)
from htr_ssl.data.sample import Sample

README = "datasets/page/README.md"
SPLIT_ALIASES = {"": "", "train": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test"}


def read_folder(root: Path, strict: bool = False) -> list[Sample]:
    """Every image under `root` (recursively) that has a same-stem UTF-8 .txt beside it."""
    root = Path(root)
    if not root.is_dir():
        raise missing("folder", root, "images with same-stem .txt transcriptions", README)
    samples, untexted = [], 0
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
        txt = image.with_suffix(".txt")
        if not txt.is_file():
            untexted += 1
            continue
        sid = image.relative_to(root).with_suffix("").as_posix()
        samples.append(Sample(sid, image, one_line(txt)))
    count_skipped(untexted, "images without a same-stem .txt", root)
    return keep_existing(samples, strict)


def one_line(txt: Path) -> str:
    """The transcription in `txt`, whitespace collapsed; a second line of text is an error: a
    sample is one line image, and joining the lines would train on text it does not show."""
    lines = [(n, line) for n, line in enumerate(read_text(txt).splitlines(), start=1)
             if line.strip()]
    if len(lines) > 1:
        lineno, second = lines[1]
        raise format_error(txt, lineno, f"{len(lines)} lines of text for one image", second,
                           fix="put the transcription on one line, or cut the image into one "
                           "image per line with a .txt each")
    return " ".join(lines[0][1].split()) if lines else ""


def read_tsv(path: Path, strict: bool = False) -> list[Sample]:
    """`path<TAB>text[<TAB>writer[<TAB>split]]` rows; relative paths are against the manifest.

    A folder stands for its `manifest.tsv`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.tsv"
    if not path.is_file():
        raise missing("TSV manifest", path.parent, path.name, README)
    samples = []
    for lineno, row in data_rows(path):
        fields = row.split("\t")
        if not 2 <= len(fields) <= 4 or not fields[0].strip():
            raise format_error(path, lineno, "expected path<TAB>text[<TAB>writer[<TAB>split]]", row,
                               fix="separate the fields with single tabs, or delete the line")
        rel, text, writer, split = (*fields, "", "")[:4]
        split = split.strip().lower()
        if split not in SPLIT_ALIASES:
            raise format_error(path, lineno, f"split must be train/val/test, got {split!r}", row,
                               fix="write train, val or test in the 4th field (or leave it empty)")
        if not Path(rel.strip()).name or Path(rel.strip()).name == "..":
            raise format_error(path, lineno, f"{rel.strip()!r} is not an image file path", row,
                               fix="give the image path first, relative to the manifest")
        image = path.parent / rel.strip()
        sid = Path(rel.strip()).with_suffix("").as_posix()
        samples.append(Sample(sid, image, text.strip(), writer.strip(), SPLIT_ALIASES[split]))
    return keep_existing(samples, strict)
