"""ALTO XML folders (v4, and v2/v3 since tags are matched by local name).

A `TextLine` gives a box from HPOS/VPOS/WIDTH/HEIGHT, or a mask from `Shape/Polygon@POINTS`
when present; its text is the `String@CONTENT` values joined by single spaces (SP elements are
the spaces; a line-end HYP is glued to the last word). Coordinates are assumed to be pixels:
a file whose MeasurementUnit is not `pixel` is skipped with a warning, since converting mm10 or
inch1200 needs a resolution ALTO does not always carry.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from htr_ssl.data.image import polygon_bbox
from htr_ssl.data.readers.common import (
    children,
    count_skipped,
    descendants,
    find_image,
    keep_existing,
    local,
    parse_xml_files,
    pixel,
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


def _region(line: ET.Element) -> tuple[tuple[int, int, int, int], tuple[Point, ...] | None] | None:
    """(bbox, polygon or None) of a TextLine, or None when it has no geometry."""
    for shape in children(line, "Shape"):
        for poly in children(shape, "Polygon"):
            try:
                pts = parse_points(poly.get("POINTS", ""))
            except ValueError:
                log.warning("ALTO: bad Polygon POINTS on line %s, using its box", line.get("ID"))
                continue
            if len(pts) >= 3:
                return polygon_bbox(pts), tuple(pts)
    try:
        x, y, w, h = (pixel(line.get(k, "")) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except ValueError:
        return None
    return (x, y, x + w, y + h), None


def _image(tree: ET.Element, path: Path) -> Path:
    names = [e.text.strip() for e in descendants(tree, "fileName") if e.text and e.text.strip()]
    if names:
        return resolve_image(names[0], path)
    return find_image(path.parent, path.stem, ".png")


def read_alto(root: Path, strict: bool = False) -> list[Sample]:
    """One Sample per TextLine with text, across all ALTO files under `root`."""
    samples: list[Sample] = []
    untexted = unshaped = 0
    for path, tree in parse_xml_files(xml_files(root, "ALTO"), strict):
        if local(tree.tag).lower() != "alto":
            log.debug("not an ALTO file, ignored: %s", path)
            continue
        unit = next((e.text for e in descendants(tree, "MeasurementUnit")), None) or "pixel"
        if unit.strip() != "pixel":
            log.warning("ALTO: %s uses MeasurementUnit %r, not pixel; skipped", path, unit)
            continue
        image = _image(tree, path)
        for n, line in enumerate(descendants(tree, "TextLine")):
            text = _text(line)
            if not text:
                untexted += 1
                continue
            region = _region(line)
            if region is None:
                unshaped += 1
                continue
            lid = line.get("ID") or f"l{n}"
            samples.append(Sample(f"{path.stem}/{lid}", image, text, writer=path.stem,
                                  bbox=region[0], polygon=region[1]))
    count_skipped(untexted, "ALTO TextLines without text", Path(root))
    count_skipped(unshaped, "ALTO TextLines without HPOS/VPOS/WIDTH/HEIGHT or polygon", Path(root))
    return keep_existing(samples, strict)
