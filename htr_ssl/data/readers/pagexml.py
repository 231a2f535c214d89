"""PAGE XML folders (Transkribus, eScriptorium, kraken exports), any schema version.

Tags are matched by local name so the 2010, 2013-07-15 and 2019-07-15 namespaces all work.
Each `TextLine` becomes a page crop masked by its `Coords` polygon; its text is the line's own
`TextEquiv` (index="0" or the first), never the Word-level ones. XML files that are not PAGE
(a Transkribus `mets.xml`, `metadata.xml`) are ignored.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from htr_ssl.data.image import polygon_bbox
from htr_ssl.data.readers.common import (
    DatasetFormatError,
    children,
    count_skipped,
    descendants,
    keep_existing,
    local,
    missing,
    parse_xml_files,
    pixel,
    resolve_image,
)
from htr_ssl.data.sample import Point, Sample

log = logging.getLogger(__name__)

README = "datasets/page/README.md"


def xml_files(root: Path, dataset: str) -> list[Path]:
    """`root` itself if it is a file, else every *.xml below it (page/ subfolders included)."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(root.rglob("*.xml")) if root.is_dir() else []
    if not files:
        raise missing(dataset, root, "*.xml files (searched recursively)", README)
    return files


def parse_points(text: str) -> list[Point]:
    """`"x1,y1 x2,y2"` or `"x1 y1 x2 y2"` -> integer points (floats rounded)."""
    nums = [pixel(v) for v in text.replace(",", " ").split()]
    if len(nums) % 2:
        raise ValueError(f"odd number of coordinates in {text[:60]!r}")
    return list(zip(nums[::2], nums[1::2], strict=True))


def line_polygon(line: ET.Element) -> list[Point]:
    """A TextLine's Coords: `points` attribute (2013+) or `Point` children (2010)."""
    for coords in children(line, "Coords"):
        if coords.get("points"):
            return parse_points(coords.get("points", ""))
        pts = [(pixel(p.get("x", 0)), pixel(p.get("y", 0)))
               for p in children(coords, "Point")]
        if pts:
            return pts
    return []


def line_text(line: ET.Element) -> str:
    """Unicode of the line-level TextEquiv with index="0", else the first one."""
    equivs = children(line, "TextEquiv")
    if not equivs:
        return ""
    chosen = next((e for e in equivs if e.get("index") == "0"), equivs[0])
    uni = children(chosen, "Unicode")
    return " ".join((uni[0].text or "").split()) if uni else ""


def read_pagexml(root: Path, strict: bool = False) -> list[Sample]:
    """One Sample per TextLine with text, across all PAGE files under `root`."""
    samples: list[Sample] = []
    untexted = unshaped = 0
    for path, tree in parse_xml_files(xml_files(root, "PAGE XML"), strict):
        if local(tree.tag) != "PcGts":
            log.debug("not a PAGE file, ignored: %s", path)
            continue
        for page in descendants(tree, "Page"):
            image = resolve_image(page.get("imageFilename", f"{path.stem}.png"), path)
            for n, line in enumerate(descendants(page, "TextLine")):
                text = line_text(line)
                if not text:
                    untexted += 1
                    continue
                try:
                    poly = line_polygon(line)
                except ValueError as err:
                    if strict:
                        raise DatasetFormatError(
                            f"{path}: TextLine {line.get('id')}: bad Coords ({err}). Fix: give "
                            "it points like '10,20 50,20 50,40', or drop reader_args.strict to "
                            "skip such lines") from err
                    poly = []
                if len(poly) < 3:
                    unshaped += 1
                    continue
                lid = line.get("id") or f"l{n}"
                samples.append(Sample(f"{path.stem}/{lid}", image, text, writer=path.stem,
                                      bbox=polygon_bbox(poly), polygon=tuple(poly)))
    count_skipped(untexted, "PAGE TextLines without text", Path(root))
    count_skipped(unshaped, "PAGE TextLines without a usable Coords polygon", Path(root))
    return keep_existing(samples, strict)
