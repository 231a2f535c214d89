"""What htr-ssl-predict reads: line images, PAGE and ALTO files, and folders of either.

Each XML file is read as the dataset readers read it (the same lines, crops and masks), with
lines that have no text included. A page image named by a page file is read through that
file, never as one line. What cannot be read (an XML file that does not parse, a page whose
image is missing, a line without usable geometry) is left out with one message naming the
file and line; the rest is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from htr_ssl.data.readers.alto import alto_doc
from htr_ssl.data.readers.common import (
    IMAGE_EXTS,
    DatasetFormatError,
    PageDoc,
    decode_text,
    local,
    parse_xml,
)
from htr_ssl.data.readers.pagexml import page_doc
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """One input file: a line image, or a page file with its lines."""

    path: Path
    base: Path | None  # the input folder it was found in; None when given as a file
    doc: PageDoc | None = None

    def relative(self) -> Path:
        """Its path below the folder it was found in (its name when given as a file)."""
        return self.path.relative_to(self.base) if self.base else Path(self.path.name)


@dataclass
class Inputs:
    units: list[Unit]
    folders: list[Path]  # the input folders
    problems: list[str] = field(default_factory=list)  # one per page or line left out

    def samples(self) -> tuple[list[Sample], list[tuple[int, int | None, str]]]:
        """Every line to read, in input order, and for each (unit index, line position in its
        page file or None for an image, line id or ""). Ids name the file, and the line of a
        page."""
        samples, where = [], []
        for u, unit in enumerate(self.units):
            if unit.doc is None:
                samples.append(Sample(str(unit.path), unit.path, ""))
                where.append((u, None, ""))
                continue
            seen: set[str] = set()
            for line, order in zip(unit.doc.lines, unit.doc.order, strict=True):
                lid = line_id(line)
                sid = f"{unit.path} line {lid}"
                sid = f"{sid} #{order}" if sid in seen else sid  # duplicate ids in the XML
                seen.add(sid)
                samples.append(replace(line, id=sid))
                where.append((u, order, lid))
        return samples, where


def line_id(sample: Sample) -> str:
    """A page line's id in its file (readers name samples `<file stem>/<line id>`)."""
    return sample.id.split("/", 1)[1]


def read_inputs_file(path: str | Path) -> list[str]:
    """One input per line, taken as written (commas, brackets, quotes, any letters): the way
    to give names that a command line would need quoting for. Blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inputs_file={path} does not exist; give a text file with "
                                "one image, page file or folder per line")
    return [line.rstrip("\r") for line in decode_text(path.read_bytes()).split("\n")
            if line.strip()]


def input_list(inputs: Sequence[object] | object | None, inputs_file: str | None,
               example: str) -> list[str]:
    """A command's `inputs=[...]` (a list or one value) and the lines of `inputs_file=`, in
    that order; none at all is an error whose fix shows `example` (what the command reads)."""
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        items = [str(v) for v in inputs]
    else:
        items = [str(inputs)] if inputs else []
    if inputs_file:
        items += read_inputs_file(inputs_file)
    if not items:
        raise ValueError(f"no inputs: give {example}")
    return items


def collect_images(inputs: Sequence[str]) -> list[Path]:
    """Image files as given, plus every image below each folder (sorted); each file once."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) found in {list(inputs)}")
    return paths


def collect(items: Sequence[str]) -> Inputs:
    """The inputs as files: images and page files as given, and every image and XML file
    below each folder (sorted); each file once."""
    units: list[Unit] = []
    folders: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for item in items:
        p = Path(item)
        if p.is_dir():
            folders.append(p)
            files = sorted(f for f in p.rglob("*") if f.is_file()
                           and f.suffix.lower() in (*IMAGE_EXTS, ".xml"))
        elif p.is_file():
            files = [p]
        else:
            raise FileNotFoundError(f"input {p} does not exist")
        for f in files:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            base = p if p.is_dir() else None
            if f.suffix.lower() == ".xml":
                doc = _read_page(f, problems, named=base is None)
                if doc is not None:
                    units.append(Unit(f, base, doc))
            else:
                units.append(Unit(f, base))
    page_images = {u.doc.image.resolve() for u in units if u.doc}
    units = [u for u in units if u.doc or u.path.resolve() not in page_images]
    if not units and not problems:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) or PAGE/ALTO files "
                                f"found in {list(items)}")
    return Inputs(units, folders, problems)


def _read_page(path: Path, problems: list[str], named: bool) -> PageDoc | None:
    """The file's lines, or None (with the reason in `problems`) when none can be read."""
    try:
        tree = parse_xml(path)
    except DatasetFormatError as err:
        problems.append(f"{err} The file is skipped.")
        return None
    doc = page_doc(path, tree) or alto_doc(path, tree)
    if doc is None:
        if named:
            problems.append(f"{path}: neither PAGE nor ALTO (its root element is "
                            f"<{local(tree.tag)}>): skipped")
        else:
            log.debug("not a PAGE or ALTO file, ignored: %s", path)
        return None
    if doc.problem:
        problems.append(f"{path}: {doc.problem}: skipped")
        return None
    if doc.lines and not doc.image.is_file():
        problems.append(f"{path}: its page image {doc.image_ref!r} is not there (looked "
                        f"beside the file and in its parent folder): page skipped. Fix: put "
                        f"{Path(doc.image_ref.replace(chr(92), '/')).name} next to the file")
        return None
    problems += [f"{path} {note}: line skipped" for note in doc.skipped]
    return doc
