"""Font sources: Hershey single-stroke fonts (always there) and handwriting TTF/OTF files.

Hershey fonts are centre-line strokes, so the writer's pen width can be chosen freely; their
glyph strokes are parsed once per process and cached as float arrays.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from HersheyFonts import HersheyFonts

# Script faces look like handwriting; the print faces are kept rare for variety.
HERSHEY_WEIGHTS: dict[str, float] = {
    "cursive": 3.0, "scripts": 3.0, "scriptc": 2.0, "timesi": 0.7, "futural": 0.3,
}
Box = tuple[int, int, int, int]  # a token's box on the line: x0, y0, x1, y1, end-exclusive
UNITS_PER_HEIGHT = 40.0  # font units mapped onto the nominal line height (Hershey and TTF)
TTF_WEIGHT = 2.0
HANDWRITING_HINTS = (
    "hand", "script", "kristi", "breip", "dancing", "dkg", "cursive", "pen", "brush",
    "caveat", "kalam", "marker", "scrawl", "ink", "write", "homemade", "indie",
)
FONT_SUFFIXES = (".ttf", ".otf")


@dataclass(frozen=True)
class Glyph:
    """One Hershey glyph: strokes in font units relative to the pen position, and its advance."""

    strokes: tuple[np.ndarray, ...]
    advance: float


@cache
def hershey_glyphs(name: str) -> dict[str, Glyph]:
    """All glyphs of a built-in Hershey font, keyed by character."""
    font = HersheyFonts()
    font.load_default_font(name)
    out: dict[str, Glyph] = {}
    for code in range(32, 127):
        ch = chr(code)
        for g in font.glyphs_for_text(ch):
            strokes = tuple(
                np.asarray(s, dtype=np.float32) - np.array([g.left_offset, 0], np.float32)
                for s in g.strokes
                if len(s) > 0
            )
            out[ch] = Glyph(strokes, float(g.char_width))
    return out


def system_font_dirs() -> list[Path]:
    """The usual font folders of Linux, macOS and Windows."""
    dirs = [Path.home() / ".fonts", Path.home() / ".local/share/fonts", Path("/usr/share/fonts"),
            Path("/usr/local/share/fonts")]
    if sys.platform == "darwin":
        dirs += [Path("/Library/Fonts"), Path.home() / "Library/Fonts"]
    if os.name == "nt":
        dirs.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    return dirs


def find_ttf_fonts(font_dir: str | Path | None = None, system: bool = True) -> list[str]:
    """Sorted font paths: every TTF/OTF under `font_dir`, plus system fonts whose file name
    suggests handwriting. Sorting keeps writer styles identical between runs on one machine."""
    found: set[Path] = set()
    if font_dir is not None:
        root = Path(font_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"font_dir {root} is not a directory")
        found |= {p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES}
    if system:
        for d in system_font_dirs():
            if d.is_dir():
                found |= {
                    p for p in d.rglob("*")
                    if p.suffix.lower() in FONT_SUFFIXES
                    and any(h in p.stem.lower() for h in HANDWRITING_HINTS)
                }
    return sorted(str(p.resolve()) for p in found)


def font_table(font_dir: str | Path | None = None, system: bool = True) -> list[tuple[str, float]]:
    """(font, weight) pairs writers are drawn from: Hershey names, then TTF/OTF paths."""
    ttf = [(p, TTF_WEIGHT) for p in find_ttf_fonts(font_dir, system)]
    return [*HERSHEY_WEIGHTS.items(), *ttf]


def is_hershey(font: str) -> bool:
    return font in HERSHEY_WEIGHTS
