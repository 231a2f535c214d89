"""TTF/OTF handwriting fonts: draw glyph by glyph with PIL, then slant and drift by remapping.

Outline fonts have their own stroke weight, so the writer's pen width only thickens them a
little; slant and baseline drift are applied to the whole mask, and token boxes are moved
through the same transform.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htr_ssl.data.synthetic.corpus import Unit
from htr_ssl.data.synthetic.fonts import UNITS_PER_HEIGHT, Box
from htr_ssl.data.synthetic.style import WriterStyle

CAP_UNITS = 21.0  # a Hershey capital's height in font units, to size TTF text alike


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _draw_glyphs(
    units: list[Unit], style: WriterStyle, px: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[float]], int]:
    """Draw the line upright; returns the mask, token boxes [x0, y0, x1, y1], baseline y."""
    size = max(8, round(px * CAP_UNITS / 0.7))
    font = _font(style.font, size)
    thick = max(0, round(style.stroke_px * size * 0.3) - 1)
    n_chars = sum(len(t) for u in units for t in u) + len(units)
    w, h, base = int(size * (0.9 * n_chars + 4)), int(size * 2.2), int(size * 1.4)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    boxes: list[list[float]] = []
    pen = float(size)
    for ui, unit in enumerate(units):
        if ui:
            pen += style.word_spacing * px * float(rng.uniform(0.85, 1.25))
        for ti, tok in enumerate(unit):
            if ti:
                pen += (max(0.0, style.letter_spacing) + 1.5) * px
            box = [np.inf, np.inf, -np.inf, -np.inf]
            for ch in tok:
                dx, dy = rng.normal(0.0, style.glyph_jitter * px, 2)
                xy = (pen + dx, base + dy)
                draw.text(xy, ch, font=font, fill=255, anchor="ls", stroke_width=thick,
                          stroke_fill=255)
                bx = draw.textbbox(xy, ch, font=font, anchor="ls", stroke_width=thick)
                box = [min(box[0], bx[0]), min(box[1], bx[1]), max(box[2], bx[2]),
                       max(box[3], bx[3])]
                pen += font.getlength(ch) + style.letter_spacing * px
            if not np.isfinite(box[0]):  # whitespace-only token
                box = [pen - 1, base - size * 0.5, pen, base]
            boxes.append(box)
    return np.asarray(canvas), boxes, base


def render_ttf_mask(
    units: list[Unit], style: WriterStyle, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Box]]:
    """Ink mask (uint8, 255 = ink) of a line in a TTF/OTF font and its token boxes."""
    px = height / UNITS_PER_HEIGHT * style.size
    mask, boxes, base = _draw_glyphs(units, style, px, rng)
    mask = cv2.resize(mask, None, fx=style.x_scale, fy=1.0, interpolation=cv2.INTER_AREA)
    h, w = mask.shape
    pad = int(abs(style.slant) * h) + 2
    amp, period = style.drift_amp * px, style.drift_period * px
    phase = float(rng.uniform(0, 2 * np.pi))

    def drift(x: np.ndarray) -> np.ndarray:
        return amp * np.sin(2 * np.pi * x / period + phase) + style.tilt * x

    # Inverse map: output (u, v) samples input (u - pad + slant * (y - base), y = v - drift(u)).
    u = np.arange(w + 2 * pad, dtype=np.float32)[None, :]
    v = np.arange(h, dtype=np.float32)[:, None]
    src_y = v - drift(u).astype(np.float32)
    src_x = u - pad + style.slant * (src_y - base)
    warped = cv2.remap(mask, src_x.astype(np.float32), src_y.astype(np.float32),
                       cv2.INTER_LINEAR, borderValue=0)
    out_boxes = []
    for x0, y0, x1, y1 in boxes:
        xs = [x * style.x_scale - style.slant * (y - base) + pad for y in (y0, y1)
              for x in (x0, x1)]
        xa, xb = min(xs), max(xs)
        d = drift(np.linspace(xa, xb, 16))
        out_boxes.append([xa, y0 + d.min(), xb, y1 + d.max()])
    return _crop(warped, out_boxes, max(2, round(0.05 * height)))


def _crop(mask: np.ndarray, boxes: list[list[float]], margin: int) -> tuple[np.ndarray, list[Box]]:
    """Cut the mask to its ink plus a margin and shift the boxes along."""
    ys, xs = np.nonzero(mask > 8)
    if len(xs) == 0:
        ys, xs = np.array([0, mask.shape[0] - 1]), np.array([0, mask.shape[1] - 1])
    y0, x0 = max(0, ys.min() - margin), max(0, xs.min() - margin)
    y1, x1 = min(mask.shape[0], ys.max() + margin + 1), min(mask.shape[1], xs.max() + margin + 1)
    out = mask[y0:y1, x0:x1]
    h, w = out.shape
    clipped = []
    for bx0, by0, bx1, by1 in boxes:
        a = int(np.clip(np.floor(bx0) - x0, 0, w - 1))
        b = int(np.clip(np.floor(by0) - y0, 0, h - 1))
        c = int(np.clip(np.ceil(bx1) - x0 + 1, a + 1, w))
        d = int(np.clip(np.ceil(by1) - y0 + 1, b + 1, h))
        clipped.append((a, b, c, d))
    return np.ascontiguousarray(out), clipped
