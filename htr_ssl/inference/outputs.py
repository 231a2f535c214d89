"""Where htr-ssl-predict writes what it read, and the checks made before any model is loaded.

`tsv`, `jsonl` and `txt` give one record per line (a file, or standard output); `page` and
`alto` give a copy of every input page file, with the text, in an output folder that mirrors
the inputs' layout. Nothing is ever written over an input, and an existing output file only
with `overwrite`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TextIO

from htr_ssl.data.readers.common import resolve_image
from htr_ssl.data.writers import write_copy
from htr_ssl.data.writers.alto import fill_alto
from htr_ssl.data.writers.pagexml import fill_pagexml
from htr_ssl.eval.confidence import Reading
from htr_ssl.inference.inputs import Inputs, Unit

RECORDS = ("tsv", "jsonl", "txt")
PAGES = ("page", "alto")
FORMATS = RECORDS + PAGES
FILLS = {"page": fill_pagexml, "alto": fill_alto}


class RecordWriter:
    """One record per line read: tsv (path, line, text, confidence, word_confidences),
    jsonl (the same with words as objects) or txt (the text alone)."""

    def __init__(self, stream: TextIO, fmt: str) -> None:
        self.stream, self.fmt = stream, fmt
        self.rows = csv.writer(stream, delimiter="\t", lineterminator="\n")
        if fmt == "tsv":
            self.rows.writerow(("path", "line", "text", "confidence", "word_confidences"))

    def write(self, path: str, line: str, reading: Reading) -> None:
        if self.fmt == "tsv":
            self.rows.writerow((path, line, reading.text, f"{reading.confidence:.4f}",
                                " ".join(f"{w.confidence:.4f}" for w in reading.words)))
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps({
                "path": path, "line": line or None, "text": reading.text,
                "confidence": round(reading.confidence, 4),
                "words": [{"text": w.text, "confidence": round(w.confidence, 4)}
                          for w in reading.words]}, ensure_ascii=False) + "\n")
        else:
            self.stream.write(reading.text + "\n")
        self.stream.flush()  # each line as it is read: an error later loses none


def check_format(fmt: str, out: str | None) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt in PAGES and not out:
        raise ValueError(f"format={fmt} writes a copy of each input page: give the folder "
                         "for them, out=FOLDER")


def record_file(out: str | None, overwrite: bool, inputs: Inputs) -> Path | None:
    """The record file `out`, checked: not a folder, not an input, not an existing file
    unless `overwrite`, writable."""
    from htr_ssl.inference.runtime import ensure_writable

    if not out:
        return None
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"out={out} is a folder; give the file to write (e.g. "
                         f"out={path / 'predictions.tsv'})")
    if path.exists() and path.resolve() in {u.path.resolve() for u in inputs.units}:
        raise FileExistsError(f"out={out} is one of the inputs; the inputs are never "
                              "modified. Fix: choose another out=")
    if path.exists() and not overwrite:
        raise FileExistsError(f"out={out} already exists ({path.stat().st_size} bytes); "
                              "htr-ssl-predict does not overwrite files. Fix: choose another "
                              "out=, or add overwrite=true")
    ensure_writable(path.parent, "out=...", "output folder")
    return path


def open_records(path: Path, overwrite: bool) -> TextIO:
    """`path` opened for writing; never replaces a file that appeared since it was checked,
    unless `overwrite`."""
    try:
        return path.open("w" if overwrite else "x", newline="", encoding="utf-8")
    except FileExistsError as err:
        raise FileExistsError(f"out={path} already exists; choose another out=, or add "
                              "overwrite=true") from err


def page_targets(fmt: str, out: str, overwrite: bool, inputs: Inputs) -> dict[int, Path]:
    """Where each page file's copy goes (unit index -> path), checked before anything is
    read: every input is a page file of format `fmt`, `out` is not an input folder nor inside
    one, no copy would replace an input or another copy, and none exists unless
    `overwrite`."""
    folder = Path(out)
    if folder.is_file():
        raise ValueError(f"out={out} is a file; format={fmt} writes a folder of page files")
    kind = "PAGE" if fmt == "page" else "ALTO"
    for unit in inputs.units:
        if unit.doc is None:
            raise ValueError(f"{unit.path} is an image: format={fmt} writes copies of "
                             f"{kind} files. Fix: format=tsv, jsonl or txt for images")
        if unit.doc.kind != fmt:
            raise ValueError(f"{unit.path} is {unit.doc.kind.upper()}, not {kind}. Fix: "
                             f"format={unit.doc.kind} for {unit.doc.kind.upper()} files")
    for given in inputs.folders:
        same = folder.resolve() == given.resolve()
        if same or given.resolve() in folder.resolve().parents:
            raise FileExistsError(
                f"out={out} is {'the input folder' if same else 'inside the input folder'} "
                f"{given}: the copies would replace or join the inputs. Fix: choose a folder "
                "outside the inputs")
    inputs_at = {u.path.resolve() for u in inputs.units}
    targets: dict[int, Path] = {}
    seen: dict[Path, Path] = {}
    for k, unit in enumerate(inputs.units):
        target = folder / unit.relative()
        if target.resolve() in inputs_at:
            raise FileExistsError(f"out={out}: the copy of {unit.path} would replace an input "
                                  f"({target}). Fix: choose another out= folder")
        if target.resolve() in seen:
            raise ValueError(f"{unit.path} and {seen[target.resolve()]} would both be written "
                             f"to {target}. Fix: give them in one folder, or predict them "
                             "one at a time")
        seen[target.resolve()] = unit.path
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists; htr-ssl-predict does not "
                                  "overwrite files. Fix: choose another out=, or add "
                                  "overwrite=true")
        targets[k] = target
    return targets


def write_page(unit: Unit, target: Path, readings: dict[int, Reading], overwrite: bool,
               link_image: bool) -> None:
    """The copy of a page file with its readings; with `link_image`, a link to the page image
    beside the copy when the name the file gives would not find it from there."""
    write_copy(unit.path, target, readings, FILLS[unit.doc.kind], overwrite)
    if link_image and not resolve_image(unit.doc.image_ref, target).is_file():
        link = target.parent / Path(unit.doc.image_ref.replace("\\", "/")).name
        if not link.exists() and not link.is_symlink():
            os.symlink(unit.doc.image.resolve(), link)
