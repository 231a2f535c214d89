"""Errors and helpers shared by the dataset readers.

Readers fail loudly on what a user must fix (a missing root, a malformed row) and degrade with a
warning on what a real archive always has a little of (a missing image, a badly encoded file).
"""

from __future__ import annotations

import codecs
import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class PageDoc:
    """What one PAGE or ALTO file holds: its TextLines with usable geometry, in document order
    (text "" where a line has none: segmenter output), each line's position among the file's
    TextLine elements (how a writer finds it again), and why the others were left out."""

    path: Path
    kind: str  # "page" | "alto"
    image: Path  # the page image the file names, where it was found (it may be missing)
    image_ref: str = ""  # the image as the file names it
    lines: list[Sample] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "line <id>: why", one per line left out
    problem: str | None = None  # why no line of the file can be read (then `lines` is empty)


class DatasetNotFoundError(FileNotFoundError):
    """The dataset root, or a file the format requires, is not where it was expected."""


class DatasetFormatError(ValueError):
    """A row or element that does not follow the published format; names file and line."""


def missing(dataset: str, root: Path, expected: str, readme: str) -> DatasetNotFoundError:
    """The error for an absent root or file, saying what was expected where and how to fix it."""
    state = "does not exist" if not Path(root).exists() else "exists but lacks it"
    return DatasetNotFoundError(
        f"{dataset}: expected {expected} under {root} ({root} {state}). Download the dataset "
        f"and lay it out as described in {readme}, or point the data root at it."
    )


def require(root: Path, rel: str, dataset: str, readme: str) -> Path:
    """`root / rel`, or a DatasetNotFoundError naming it."""
    path = Path(root) / rel
    if not path.exists():
        raise missing(dataset, Path(root), rel, readme)
    return path


def format_error(path: Path, lineno: int, problem: str, row: str = "",
                 fix: str = "correct or delete that line") -> DatasetFormatError:
    """`file:line: problem: 'row'. Fix: ...`, the form every reader error takes."""
    shown = f": {row.strip()[:120]!r}" if row else ""
    return DatasetFormatError(f"{path}:{lineno}: {problem}{shown}. Fix: {fix}.")


def pixel(value: str | float | None) -> int:
    """A coordinate attribute as an int; ValueError (never OverflowError) for nan/inf/garbage."""
    number = float(value if value is not None else "")
    if not math.isfinite(number):
        raise ValueError(f"coordinate {value!r} is not a finite number")
    return round(number)


def data_rows(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a text file, skipping blank and `#` comment lines."""
    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip() and not line.lstrip().startswith("#"):
            yield lineno, line


def decode_text(data: bytes) -> str:
    """UTF-16/32 by their byte-order mark (Windows Notepad's "Unicode"), UTF-8 if valid, else
    cp1252, else latin-1 (which never fails): old datasets mix them."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def read_text(path: Path) -> str:
    """A small text file's content, tolerant of non-UTF-8 encodings."""
    return decode_text(Path(path).read_bytes())


def parse_xml(path: Path) -> ET.Element:
    """Parse an XML file; re-parse as cp1252/latin-1 text when its bytes are not valid UTF-8.

    Some CVL files declare UTF-8 but hold latin-1 bytes; expat rejects those, so we decode
    ourselves and parse the resulting string (a str input ignores the declared encoding).
    """
    data = Path(path).read_bytes()
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        first = err
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return ET.fromstring(decode_text(data))
        except ET.ParseError as err:
            first = err
    line = first.position[0] if getattr(first, "position", None) else 0
    raise format_error(Path(path), line, f"not well-formed XML ({first})",
                       fix="repair the XML there (or move the file out of the data folder)"
                       ) from first


def parse_xml_files(paths: Iterable[Path], strict: bool) -> Iterator[tuple[Path, ET.Element]]:
    """Parse each file; a broken one is skipped with a warning unless `strict`."""
    for path in paths:
        try:
            yield path, parse_xml(path)
        except DatasetFormatError as err:
            if strict:
                raise
            log.warning("skipping XML file (reader_args.strict=true makes this an error): %s",
                        err)


def local(tag: str) -> str:
    """Tag name without its `{namespace}`, so every PAGE/ALTO version matches."""
    return tag.rsplit("}", 1)[-1]


def children(elem: ET.Element, name: str) -> list[ET.Element]:
    """Direct children with local tag `name`."""
    return [c for c in elem if local(c.tag) == name]


def descendants(elem: ET.Element, name: str) -> Iterator[ET.Element]:
    """All descendants (document order) with local tag `name`."""
    return (e for e in elem.iter() if local(e.tag) == name)


def resolve_image(name: str, xml_path: Path) -> Path:
    """An image named inside an XML file, looked for next to the file and in its parent.

    Exports keep XML in `page/` beside the images, or name images by absolute/Windows paths;
    the first existing candidate wins, else the first one (reported later as missing).
    """
    name = name.strip().replace("\\", "/")
    base = Path(name).name
    folders = (xml_path.parent, xml_path.parent.parent)
    candidates = [Path(name)] if Path(name).is_absolute() else []
    candidates += [d / name for d in folders if not Path(name).is_absolute()]
    candidates += [d / base for d in folders]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def find_image(folder: Path, stem: str, default_ext: str) -> Path:
    """`folder/stem.<ext>` for the first existing image extension, else with `default_ext`."""
    for ext in (default_ext, *IMAGE_EXTS):
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return folder / f"{stem}{default_ext}"


def keep_existing(samples: Sequence[Sample], strict: bool = False) -> list[Sample]:
    """Drop samples whose image file is missing or empty: one warning per file, then a count.

    Under `strict` the first missing file raises instead, so a broken copy is caught early.
    """
    status: dict[Path, bool] = {}
    kept: list[Sample] = []
    for s in samples:
        ok = status.get(s.image_path)
        if ok is None:
            problem = image_problem(s.image_path)
            ok = status[s.image_path] = problem is None
            if not ok:
                if strict:
                    raise DatasetNotFoundError(
                        f"image {s.image_path} for sample {s.id} {problem}. Fix: restore the "
                        "file, or remove the sample from the dataset's listing (without "
                        "reader_args.strict such samples are skipped with a warning)")
                log.warning("image %s (sample %s) %s: sample skipped", s.image_path, s.id,
                            problem)
        if ok:
            kept.append(s)
    if len(kept) < len(samples):
        bad = sum(1 for v in status.values() if not v)
        log.warning(
            "skipped %d samples whose images are missing or empty (%d files)",
            len(samples) - len(kept), bad,
        )
    return kept


def image_problem(path: Path) -> str | None:
    """Why an image file cannot be used, from the file system alone (None when it can)."""
    if not path.is_file():
        return "does not exist"
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    return None


def count_skipped(n: int, why: str, where: Path) -> None:
    """One summary warning for rows a reader had to skip."""
    if n:
        log.warning("skipped %d %s in %s", n, why, where)


def report_skipped(notes: Sequence[str], why: str, where: Path) -> None:
    """One summary warning for lines a reader had to skip, naming the first few."""
    if notes:
        more = f" (+{len(notes) - 3} more)" if len(notes) > 3 else ""
        log.warning("skipped %d %s in %s: %s%s. Fix: correct those lines' coordinates in the "
                    "XML, or remove the lines", len(notes), why, where, "; ".join(notes[:3]),
                    more)


def distinct(points: Sequence[tuple[int, int]]) -> int:
    """How many different points a polygon has: fewer than 3 enclose nothing."""
    return len(set(points))


def read_id_list(path: Path) -> list[str]:
    """One id per line (blank lines and `#` comments ignored), e.g. Aachen `*.uttlist` files."""
    out = []
    for lineno, raw in data_rows(Path(path)):
        line = raw.strip()
        if len(line.split()) > 1 or not line.isprintable():
            raise format_error(Path(path), lineno, "expected one sample or form id per line", raw,
                               fix="put one id per line (e.g. a01-000u), nothing else")
        out.append(line)
    return out
