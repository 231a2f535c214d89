"""Readings into ALTO (v2-v4): each word a `String` with CONTENT and WC, an `SP` between words.

A line that gets a reading loses its earlier String/SP/HYP elements (the Shape stays). ALTO
has no line confidence, and a line recognizer gives no word boxes, so Strings carry no
HPOS/VPOS/WIDTH/HEIGHT (optional in ALTO). An empty reading is one empty String: ALTO wants
at least one element of text per line.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from htr_ssl.data.writers import LineReading, conf, local, qualified, text_lines


def fill_alto(root: etree._Element, lines: Mapping[int, LineReading]) -> None:
    """Put each reading into the TextLine at its position (document order)."""
    elements = text_lines(root)
    for k, reading in lines.items():
        line = elements[k]
        for child in list(line):
            if local(child) in ("String", "SP", "HYP"):
                line.remove(child)
        shapes = [i for i, c in enumerate(line) if local(c) == "Shape"]
        at = shapes[-1] + 1 if shapes else 0
        words = [(w.text, w.confidence) for w in reading.words] or [("", reading.confidence)]
        for n, (text, confidence) in enumerate(words):
            if n:
                line.insert(at, etree.Element(qualified(line, "SP")))
                at += 1
            line.insert(at, etree.Element(qualified(line, "String"), CONTENT=text,
                                          WC=conf(confidence)))
            at += 1
