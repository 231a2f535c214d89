"""Recognized text written back into copies of PAGE and ALTO files.

The copy keeps everything of the input (namespaces and their prefixes, comments, other
elements, the image reference) and changes only the text of the lines it is given; lxml
keeps what xml.etree would rewrite. Writers know the formats, never the models: a line's
reading is anything with `text`, `confidence` and `words` (each with `text`, `confidence`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from lxml import etree

from htr_ssl.data.readers.common import DatasetFormatError, decode_text

# Entities are never expanded and nothing is fetched: the files come from anywhere.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


class WordReading(Protocol):
    text: str
    confidence: float


class LineReading(Protocol):
    text: str
    confidence: float
    words: Sequence[WordReading]


Fill = Callable[[etree._Element, Mapping[int, LineReading]], None]


def local(elem: etree._Element) -> str:
    """An element's tag without namespace; "" for comments and processing instructions."""
    return etree.QName(elem).localname if isinstance(elem.tag, str) else ""


def qualified(like: etree._Element, name: str) -> str:
    """`name` in the namespace of `like`, so new elements belong to the file's schema."""
    ns = etree.QName(like).namespace
    return f"{{{ns}}}{name}" if ns else name


def text_lines(root: etree._Element) -> list[etree._Element]:
    """Every TextLine in document order: position k is the k-th the readers enumerate."""
    return [e for e in root.iter() if local(e) == "TextLine"]


def conf(value: float) -> str:
    return f"{min(max(float(value), 0.0), 1.0):.4f}"


def parse(path: Path) -> etree._ElementTree:
    """The file's tree; a file that declares UTF-8 but holds cp1252/latin-1 bytes (the readers
    accept those) is decoded as they decode it."""
    data = Path(path).read_bytes()
    try:
        return etree.ElementTree(etree.fromstring(data, PARSER))
    except etree.XMLSyntaxError as err:
        first = err
    try:
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", decode_text(data))
        return etree.ElementTree(etree.fromstring(text, PARSER))
    except etree.XMLSyntaxError:
        raise DatasetFormatError(f"{path}:{first.lineno}: not well-formed XML ({first}). Fix: "
                                 "repair the XML there") from first


def write_copy(source: Path, target: Path, lines: Mapping[int, LineReading], fill: Fill,
               overwrite: bool = False) -> None:
    """Write a copy of `source` to `target` with `fill` putting each reading into the TextLine
    at its position; never `source` itself, nor an existing file unless `overwrite`."""
    if Path(target).resolve() == Path(source).resolve():
        raise FileExistsError(f"{target} is the input file itself; the inputs are never "
                              "modified. Fix: choose another out= folder")
    tree = parse(source)
    fill(tree.getroot(), lines)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tree.write(str(tmp), xml_declaration=True, encoding="UTF-8")
        if not overwrite and target.exists():
            raise FileExistsError(f"{target} already exists; htr-ssl-predict does not "
                                  "overwrite files. Fix: choose another out=, or add "
                                  "overwrite=true")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
