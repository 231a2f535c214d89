"""PAGE XML folders (Transkribus, eScriptorium, kraken exports), any schema version.

Tags are matched by local name so the 2010, 2013-07-15 and 2019-07-15 namespaces all work.
Each `TextLine` becomes a page crop masked by its `Coords` polygon; its text is the line's own
`TextEquiv` (index="0" or the first), never the Word-level ones, and "" when it has none (a
segmenter's output: pretraining reads such lines, training drops them with a count). A line
whose polygon has fewer than 3 distinct points is left out with a warning naming it. XML files
that are not PAGE (a Transkribus `mets.xml`, `metadata.xml`) are ignored.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from htr_ssl.data.image import polygon_bbox
from htr_ssl.data.readers.common import (
    DatasetFormatError,
    PageDoc,
    children,
    descendants,
    distinct,
    keep_existing,
    local,
    missing,
    parse_xml_files,
    pixel,
    report_skipped,
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


def page_doc(path: Path, tree: ET.Element, strict: bool = False) -> PageDoc | None:
    """Every TextLine of a parsed PAGE file with a usable Coords polygon, or None when the file
    is not PAGE. Lines without text are kept (text ""): they are what a segmenter writes."""
    if local(tree.tag) != "PcGts":
        return None
    position = {id(e): n for n, e in enumerate(descendants(tree, "TextLine"))}
    doc = PageDoc(path, "page", path.with_suffix(".png"))
    for k, page in enumerate(descendants(tree, "Page")):
        ref = page.get("imageFilename", f"{path.stem}.png")
        image = resolve_image(ref, path)
        if k == 0:
            doc.image, doc.image_ref = image, ref
        for n, line in enumerate(descendants(page, "TextLine")):
            lid = line.get("id") or f"l{n}"
            try:
                poly = line_polygon(line)
            except ValueError as err:
                if strict:
                    raise DatasetFormatError(
                        f"{path}: TextLine {line.get('id')}: bad Coords ({err}). Fix: give "
                        "it points like '10,20 50,20 50,40', or drop reader_args.strict to "
                        "skip such lines") from err
                doc.skipped.append(f"line {lid}: bad Coords ({err})")
                continue
            if distinct(poly) < 3:
                doc.skipped.append(f"line {lid}: its Coords polygon has {distinct(poly)} "
                                   "distinct points, fewer than the 3 that enclose a line")
                continue
            doc.lines.append(Sample(f"{path.stem}/{lid}", image, line_text(line),
                                    writer=path.stem, bbox=polygon_bbox(poly),
                                    polygon=tuple(poly)))
            doc.order.append(position[id(line)])
    return doc


def read_pagexml(root: Path, strict: bool = False) -> list[Sample]:
    """One Sample per TextLine (text "" where it has none), across all PAGE files under
    `root`."""
    samples: list[Sample] = []
    skipped: list[str] = []
    for path, tree in parse_xml_files(xml_files(root, "PAGE XML"), strict):
        doc = page_doc(path, tree, strict)
        if doc is None:
            log.debug("not a PAGE file, ignored: %s", path)
            continue
        samples += doc.lines
        skipped += [f"{path.name} {note}" for note in doc.skipped]
    report_skipped(skipped, "PAGE TextLines without a usable Coords polygon", Path(root))
    return keep_existing(samples, strict)
