"""Pixel-exact pictures of heat maps: overlays, attention strips, contact sheets, PNG output.

Everything is composed as a numpy RGB array whose size is stated by each function, so a heat map
lines up with the image column for column; text labels are drawn by matplotlib (Agg) on a figure
of exactly that many pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DPI = 100
WHITE = 255


@dataclass(frozen=True)
class Label:
    """Text at pixel (x, y) of a canvas (y from the top); `size` is the text height in pixels."""

    x: float
    y: float
    text: str
    size: float = 10.0
    ha: str = "left"
    va: str = "center"
    color: str = "black"


@dataclass
class Canvas:
    rgb: np.ndarray  # (H, W, 3) uint8
    labels: list[Label] = field(default_factory=list)


def colormap(name: str):
    """A matplotlib colormap by name, with the valid names in the error."""
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colormap {name!r}; use a matplotlib name such as jet, "
                         "inferno, viridis or turbo") from None


def normalize(heat: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the maximum (an all-zero map stays zero)."""
    heat = np.clip(np.nan_to_num(heat.astype(np.float64)), 0, None)
    peak = heat.max() if heat.size else 0.0
    return heat / peak if peak > 0 else heat


def gray_rgb(image: np.ndarray) -> np.ndarray:
    """A (H, W) image in [0, 1] (white = 1) as float RGB."""
    return np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, cmap: str = "jet", alpha: float = 0.5
            ) -> np.ndarray:
    """The heat map (normalized to its maximum) in a colormap over the image: (H, W, 3) uint8,
    the image's own size."""
    if image.shape != heat.shape:
        raise ValueError(f"heat map {heat.shape} and image {image.shape} differ in size")
    colors = colormap(cmap)(normalize(heat))[..., :3]
    return to_uint8((1 - alpha) * gray_rgb(image) + alpha * colors)


def visible(char: str) -> str:
    return {" ": "␣", "\t": "⇥"}.get(char, char)


def attention_strip(image: np.ndarray, weights: np.ndarray, chars: Sequence[str],
                    cmap: str = "jet", row_height: int = 12, margin: int = 24) -> Canvas:
    """The line on top, then one row per decoded character showing where the decoder looked.

    Layout: (H + L * row_height) x (margin + W) pixels; the left margin holds each row's
    character; each row is its weights (normalized to the row's maximum) in the colormap.
    """
    h, w = image.shape
    if weights.shape != (len(chars), w):
        raise ValueError(f"attention weights {weights.shape} do not match {len(chars)} "
                         f"characters x {w} columns")
    rgb = np.full((h + len(chars) * row_height, margin + w, 3), WHITE, np.uint8)
    rgb[:h, margin:] = to_uint8(gray_rgb(image))
    cm = colormap(cmap)
    labels = []
    for i, (row, char) in enumerate(zip(weights, chars, strict=True)):
        top = h + i * row_height
        rgb[top:top + row_height, margin:] = to_uint8(cm(normalize(row))[None, :, :3])
        labels.append(Label(margin / 2, top + row_height / 2, visible(char), row_height * 0.8,
                            ha="center"))
    return Canvas(rgb, labels)


def attention_combined(image: np.ndarray, weights: np.ndarray, cmap: str = "jet",
                       alpha: float = 0.5) -> np.ndarray:
    """All decoding steps in one overlay: the maximum over characters of each character's
    weights (normalized per character), the image's own size."""
    if len(weights) == 0:
        return overlay(image, np.zeros_like(image), cmap, alpha)
    per_char = np.stack([normalize(row) for row in weights])
    return overlay(image, np.broadcast_to(per_char.max(0), image.shape), cmap, alpha)


def _fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    import cv2

    if rgb.shape[0] == height:
        return rgb
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def contact_sheet(cells: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str],
                  col_labels: Sequence[str], captions: Sequence[Sequence[str]] | None = None,
                  cell_height: int = 64, header: int = 22, label_width: int = 150,
                  caption: int = 16, gap: int = 6) -> Canvas:
    """A grid of pictures (rows x columns, e.g. lines x checkpoints), each scaled to
    `cell_height` and left-aligned in cells as wide as the widest; column names on top, row
    names on the left, an optional caption (e.g. the decoded text) under each cell. A missing
    picture (None) leaves its cell white with "n/a"."""
    scaled = [[_fit_height(c, cell_height) if c is not None else None for c in row]
              for row in cells]
    cell_w = max([c.shape[1] for row in scaled for c in row if c is not None] or [cell_height])
    cap = caption if captions is not None else 0
    row_h = cell_height + cap + gap
    col_w = cell_w + gap
    rgb = np.full((header + len(scaled) * row_h, label_width + len(col_labels) * col_w, 3),
                  WHITE, np.uint8)
    size = min(12.0, header * 0.6)
    labels = [Label(label_width + j * col_w + cell_w / 2, header / 2, name, size, ha="center")
              for j, name in enumerate(col_labels)]
    for i, row in enumerate(scaled):
        top = header + i * row_h
        labels.append(Label(4, top + cell_height / 2, _shorten(row_labels[i], 24), size))
        for j, pic in enumerate(row):
            left = label_width + j * col_w
            if pic is None:
                labels.append(Label(left + cell_w / 2, top + cell_height / 2, "n/a", size,
                                    ha="center", color="gray"))
            else:
                rgb[top:top + cell_height, left:left + pic.shape[1]] = pic
            if captions is not None and captions[i][j]:
                labels.append(Label(left, top + cell_height + cap / 2,
                                    _shorten(captions[i][j], max(8, cell_w // 7)), cap * 0.7))
    return Canvas(rgb, labels)


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def save_png(picture: Canvas | np.ndarray, path: Path | str) -> Path:
    """Write an RGB array (and its labels) as a PNG of exactly the array's pixel size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    canvas = picture if isinstance(picture, Canvas) else Canvas(picture)
    h, w = canvas.rgb.shape[:2]
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.figimage(canvas.rgb, 0, 0, origin="upper", resize=False)
    for lab in canvas.labels:
        fig.text(lab.x / w, 1 - lab.y / h, lab.text, fontsize=lab.size * 72 / DPI, ha=lab.ha,
                 va=lab.va, color=lab.color)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
