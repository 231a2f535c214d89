"""Render one line of text in a writer's style: grayscale image plus a box per token.

Hershey strokes are transformed as points (per-glyph jitter, slant, baseline drift) and drawn
once with antialiased `cv2.polylines`, which is what makes generation fast; TTF/OTF fonts go
through `ttf.render_ttf_mask`. Both produce an ink mask that `finish` puts on noisy paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from htr_ssl.data.synthetic.corpus import Unit
from htr_ssl.data.synthetic.fonts import UNITS_PER_HEIGHT, Box, hershey_glyphs, is_hershey
from htr_ssl.data.synthetic.style import WriterStyle
from htr_ssl.data.synthetic.ttf import render_ttf_mask

HERSHEY_BASELINE = 9.0


@dataclass(frozen=True)
class RenderedLine:
    """A line image (dark ink on light paper), token boxes in its pixels, and IAM metadata."""

    image: np.ndarray
    tokens: list[str]
    boxes: list[Box]
    graylevel: int  # the binarisation threshold IAM records per line


def pen_width(style: WriterStyle, height: int) -> int:
    return max(1, round(style.stroke_px * height))


def _layout_hershey(
    units: list[Unit], style: WriterStyle, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[int]]:
    """Place every glyph stroke along the line (units, baseline at y=0); stroke -> token id."""
    glyphs = hershey_glyphs(style.font)
    strokes: list[np.ndarray] = []
    owner: list[int] = []
    pen, tok_id = 0.0, 0
    for ui, unit in enumerate(units):
        if ui:
            pen += style.word_spacing * float(rng.uniform(0.85, 1.25))
        for ti, tok in enumerate(unit):
            if ti:
                pen += max(0.0, style.letter_spacing) + 1.5
            for ch in tok:
                glyph = glyphs.get(ch) or glyphs["?"]
                dx, dy = rng.normal(0.0, style.glyph_jitter, 2)
                sc = 1.0 + float(rng.normal(0.0, style.glyph_scale_jitter))
                shift = np.array([pen + dx, dy - HERSHEY_BASELINE * sc], np.float32)
                for s in glyph.strokes:
                    strokes.append(s * sc + shift)
                    owner.append(tok_id)
                pen += glyph.advance * sc + style.letter_spacing
            tok_id += 1
    return strokes, owner


def _warp_points(pts: np.ndarray, style: WriterStyle, xh: float, phase: float) -> np.ndarray:
    """Ascender/descender stretch, x-scale, slant and baseline drift, all in font units."""
    x, y = pts[:, 0] * style.x_scale, pts[:, 1]
    y = np.where(y < -xh, -xh + (y + xh) * style.ascender_scale,
                 np.where(y > 0, y * style.descender_scale, y))
    x = x - style.slant * y
    y = y + style.drift_amp * np.sin(2 * np.pi * x / style.drift_period + phase) + style.tilt * x
    return np.stack([x, y], axis=1)


def render_hershey_mask(
    units: list[Unit], style: WriterStyle, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Box]]:
    """Ink mask (uint8, 255 = ink) of a line in a Hershey font and its token boxes."""
    strokes, owner = _layout_hershey(units, style, rng)
    n_tokens = sum(len(u) for u in units)
    glyphs = hershey_glyphs(style.font)
    xh = HERSHEY_BASELINE - min(float(s[:, 1].min()) for s in glyphs["x"].strokes)
    lengths = [len(s) for s in strokes]
    pts = _warp_points(np.concatenate(strokes), style, xh, float(rng.uniform(0, 2 * np.pi)))
    scale = height / UNITS_PER_HEIGHT * style.size * float(rng.uniform(0.96, 1.04))
    pts *= scale
    width = pen_width(style, height)
    margin = width + max(2, round(0.05 * height))
    pts -= pts.min(axis=0) - margin
    w, h = (np.ceil(pts.max(axis=0)).astype(int) + margin + 1).tolist()
    mask = np.zeros((h, w), np.uint8)
    parts = np.split(pts, np.cumsum(lengths)[:-1])
    cv2.polylines(mask, [np.round(p * 16).astype(np.int32) for p in parts], False, 255,
                  width, cv2.LINE_AA, shift=4)
    return mask, _token_boxes(parts, owner, n_tokens, width, (h, w))


def _token_boxes(
    parts: list[np.ndarray], owner: list[int], n_tokens: int, width: int, shape: tuple[int, int]
) -> list[Box]:
    """Bounding box of each token's strokes, grown by half the pen width and clipped."""
    lo = np.full((n_tokens, 2), np.inf)
    hi = np.full((n_tokens, 2), -np.inf)
    for p, t in zip(parts, owner, strict=True):
        lo[t] = np.minimum(lo[t], p.min(axis=0))
        hi[t] = np.maximum(hi[t], p.max(axis=0))
    pad = width / 2 + 1
    boxes = []
    for t in range(n_tokens):
        if not np.isfinite(lo[t, 0]):  # a token without strokes (cannot happen for ASCII)
            lo[t], hi[t] = (0, 0), (1, shape[0])
        x0, y0 = np.floor(lo[t] - pad).astype(int)
        x1, y1 = np.ceil(hi[t] + pad).astype(int) + 1
        boxes.append((max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)))
    return boxes


def finish(mask: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Put the ink mask on paper: uneven background, sensor noise, slight blur."""
    h, w = mask.shape
    shade = np.linspace(*rng.uniform(-6, 6, 2), w, dtype=np.float32)[None, :]
    paper = np.float32(style.paper) + shade
    img = paper - mask.astype(np.float32) * ((paper - style.ink) / 255.0)
    img += rng.normal(0.0, style.noise, (h, w)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), style.blur)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_line(
    units: list[Unit], style: WriterStyle, height: int, rng: np.random.Generator
) -> RenderedLine:
    """Render `units` (see `corpus.to_units`) at about `height` px line height."""
    if is_hershey(style.font):
        mask, boxes = render_hershey_mask(units, style, height, rng)
    else:
        mask, boxes = render_ttf_mask(units, style, height, rng)
    tokens = [t for u in units for t in u]
    return RenderedLine(finish(mask, style, rng), tokens, boxes, (style.ink + style.paper) // 2)
