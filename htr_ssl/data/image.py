"""Image I/O: grayscale uint8 loading, page crops with polygon masks, height normalization."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


class ImageReadError(RuntimeError):
    """An image that is missing or cannot be decoded; carries the path in its message."""


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header alone, or None if unreadable."""
    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return None


def load_gray(
    path: Path,
    bbox: tuple[int, int, int, int] | None = None,
    polygon: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Load `path` as 2-D uint8; crop `bbox` (x0, y0, x1, y1) and whiten outside `polygon`.

    PIL is used rather than cv2.imread because it reads multi-page and 16-bit TIFFs (CVL)
    and raises instead of returning None on a bad file.
    """
    try:
        with Image.open(path) as im:
            img = np.array(im.convert("L"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # FileNotFoundError, UnidentifiedImageError (not an image) and truncation are OSErrors
        raise ImageReadError(f"cannot read image {path}: {err}. Fix: replace or remove the "
                             "file (data.strict_images=false skips unreadable images and counts "
                             "them)") from err
    if bbox is None:
        return img
    return crop_region(img, bbox, polygon, name=str(path))


def crop_region(
    page: np.ndarray,
    bbox: tuple[int, int, int, int],
    polygon: Sequence[tuple[int, int]] | None = None,
    name: str = "page",
) -> np.ndarray:
    """Cut a region from a page; pixels outside the polygon (page coordinates) become white."""
    h, w = page.shape[:2]
    x0, y0 = max(0, int(bbox[0])), max(0, int(bbox[1]))
    x1, y1 = min(w, int(bbox[2])), min(h, int(bbox[3]))
    if x1 <= x0 or y1 <= y0:
        raise ImageReadError(f"region {bbox} lies outside {name} ({w}x{h})")
    crop = page[y0:y1, x0:x1].copy()
    if polygon is not None and len(polygon) >= 3:
        pts = np.asarray(polygon, dtype=np.int32) - np.array([x0, y0], dtype=np.int32)
        mask = np.zeros(crop.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [pts], 255)
        crop[mask == 0] = 255
    return crop


def polygon_bbox(points: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
    """Axis-aligned (x0, y0, x1, y1) box around a polygon, end-exclusive."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def resize_to_height(img: np.ndarray, height: int, max_width: int | None = None) -> np.ndarray:
    """Scale to `height` rows keeping the aspect ratio (width capped at `max_width` if given)."""
    h, w = img.shape[:2]
    new_w = max(1, round(w * height / max(h, 1)))
    if max_width is not None:
        new_w = min(new_w, max_width)
    if (h, w) == (height, new_w):
        return img
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(img, (new_w, height), interpolation=interp)
