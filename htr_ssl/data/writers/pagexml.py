"""Readings into PAGE XML (2010, 2013, 2019): each line's TextEquiv/Unicode with `conf`.

A line that gets a reading loses its earlier line-level TextEquivs and its Words (their text
would contradict the new one; PAGE Words need Coords, which a line recognizer does not
produce, so word confidences go to the other outputs). A region's own TextEquiv, when it has
one, becomes its lines' texts joined by newlines; Metadata/LastChange is set to now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from lxml import etree

from htr_ssl.data.writers import LineReading, conf, local, qualified, text_lines

BEFORE_TEXT = ("AlternativeImage", "Coords", "Baseline")  # what precedes TextEquiv in a line


def fill_pagexml(root: etree._Element, lines: Mapping[int, LineReading]) -> None:
    """Put each reading into the TextLine at its position (document order)."""
    elements = text_lines(root)
    for k, reading in lines.items():
        line = elements[k]
        for child in list(line):
            if local(child) in ("TextEquiv", "Word"):
                line.remove(child)
        equiv = etree.Element(qualified(line, "TextEquiv"), conf=conf(reading.confidence))
        etree.SubElement(equiv, qualified(line, "Unicode")).text = reading.text
        before = [i for i, c in enumerate(line) if local(c) in BEFORE_TEXT]
        line.insert(before[-1] + 1 if before else 0, equiv)
    touched = {elements[k].getparent() for k in lines}
    for region in touched:
        if region is not None and local(region) == "TextRegion":
            _region_text(region)
    for change in (e for e in root.iter() if local(e) == "LastChange"):
        change.text = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _line_text(line: etree._Element) -> str:
    equivs = [c for c in line if local(c) == "TextEquiv"]
    chosen = next((e for e in equivs if e.get("index") == "0"), equivs[0] if equivs else None)
    uni = [c for c in chosen if local(c) == "Unicode"] if chosen is not None else []
    return (uni[0].text or "") if uni else ""


def _region_text(region: etree._Element) -> None:
    """A region's own TextEquiv (if it has one) follows its lines."""
    equivs = [c for c in region if local(c) == "TextEquiv"]
    if not equivs:
        return
    text = "\n".join(t for t in (_line_text(c) for c in region if local(c) == "TextLine") if t)
    for equiv in equivs:
        equiv.attrib.pop("conf", None)
        for uni in (c for c in equiv if local(c) == "Unicode"):
            uni.text = text
