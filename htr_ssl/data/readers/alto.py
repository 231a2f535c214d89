"""ALTO XML folders (v4, and v2/v3 since tags are matched by local name).

A `TextLine` gives a box from HPOS/VPOS/WIDTH/HEIGHT, or a mask from `Shape/Polygon@POINTS`
when present; its text is the `String@CONTENT` values joined by single spaces (SP elements are
the spaces; a line-end HYP is glued to the last word), "" for a line without any (kept for
pretraining). Coordinates are assumed to be pixels:
a file whose MeasurementUnit is not `pixel` is skipped with a warning, since converting mm10 or
inch1200 needs a resolution ALTO does not always carry.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from htr_ssl.data.image import polygon_bbox
from htr_ssl.data.readers.common import (
    PageDoc,
    children,
    descendants,
    distinct,
    find_image,
    keep_existing,
    local,
    parse_xml_files,
    pixel,
    report_skipped,
    resolve_image,
)
from htr_ssl.data.readers.pagexml import parse_points, xml_files
from htr_ssl.data.sample import Point, Sample

log = logging.getLogger(__name__)


def _text(line: ET.Element) -> str:
    words: list[str] = []
    for el in line:
        tag = local(el.tag)
        if tag == "String" and el.get("CONTENT"):
            words.append(el.get("CONTENT", ""))
        elif tag == "HYP" and words:
            words[-1] += el.get("CONTENT", "")
    return " ".join(" ".join(words).split())


def _region(line: ET.Element, path: Path
            ) -> tuple[tuple[int, int, int, int], tuple[Point, ...] | None] | str:
    """(bbox, polygon or None) of a TextLine, or why it has no usable geometry. A polygon of
    fewer than 3 distinct points gives way to the line's box."""
    for shape in children(line, "Shape"):
        for poly in children(shape, "Polygon"):
            try:
                pts = parse_points(poly.get("POINTS", ""))
            except ValueError:
                log.warning("ALTO %s: bad Polygon POINTS on line %s, using its box", path,
                            line.get("ID"))
                continue
            if distinct(pts) >= 3:
                return polygon_bbox(pts), tuple(pts)
    try:
        x, y, w, h = (pixel(line.get(k, "")) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except ValueError:
        return "no polygon of 3 distinct points and no HPOS/VPOS/WIDTH/HEIGHT box"
    if w < 1 or h < 1:
        return f"no polygon of 3 distinct points, and its box is {w}x{h} pixels"
    return (x, y, x + w, y + h), None


def _image(tree: ET.Element, path: Path) -> tuple[Path, str]:
    """The page image (where it was found) and its name as the file gives it."""
    names = [e.text.strip() for e in descendants(tree, "fileName") if e.text and e.text.strip()]
    if names:
        return resolve_image(names[0], path), names[0]
    image = find_image(path.parent, path.stem, ".png")
    return image, image.name


def alto_doc(path: Path, tree: ET.Element) -> PageDoc | None:
    """Every TextLine of a parsed ALTO file with usable geometry, or None when the file is not
    ALTO. Lines without text are kept (text ""): they are what a segmenter writes."""
    if local(tree.tag).lower() != "alto":
        return None
    doc = PageDoc(path, "alto", *_image(tree, path))
    unit = next((e.text for e in descendants(tree, "MeasurementUnit")), None) or "pixel"
    if unit.strip() != "pixel":
        doc.problem = (f"it uses MeasurementUnit {unit.strip()!r}, not pixel (converting needs "
                       "a resolution ALTO does not always carry)")
        return doc
    for n, line in enumerate(descendants(tree, "TextLine")):
        lid = line.get("ID") or f"l{n}"
        region = _region(line, path)
        if isinstance(region, str):
            doc.skipped.append(f"line {lid}: {region}")
            continue
        doc.lines.append(Sample(f"{path.stem}/{lid}", doc.image, _text(line), writer=path.stem,
                                bbox=region[0], polygon=region[1]))
        doc.order.append(n)
    return doc


def read_alto(root: Path, strict: bool = False) -> list[Sample]:
    """One Sample per TextLine (text "" where it has none), across all ALTO files under
    `root`."""
    samples: list[Sample] = []
    skipped: list[str] = []
    for path, tree in parse_xml_files(xml_files(root, "ALTO"), strict):
        doc = alto_doc(path, tree)
        if doc is None:
            log.debug("not an ALTO file, ignored: %s", path)
        elif doc.problem:
            log.warning("ALTO: %s: %s; skipped", path, doc.problem)
        else:
            samples += doc.lines
            skipped += [f"{path.name} {note}" for note in doc.skipped]
    report_skipped(skipped, "ALTO TextLines without usable geometry", Path(root))
    return keep_existing(samples, strict)
