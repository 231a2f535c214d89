"""Image I/O: grayscale uint8 loading, page crops with polygon masks, height normalization."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps

log = logging.getLogger(__name__)

MIN_SIDE = 2  # an image (or region) narrower or lower than this holds no text
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # "I": 16-bit data in older Pillows
ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
FIX = ("Fix: replace or remove the file (data.strict_images=false skips unreadable images and "
       "counts them)")
_warned: set[str] = set()


class ImageReadError(RuntimeError):
    """An image that is missing or cannot be decoded; carries the path in its message."""


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (EXIF orientation applied), from the file header alone, or
    None if unreadable (a decompression bomb included: loading it then says why)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if orientation(im) in ROTATED else (w, h)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def load_gray(
    path: Path,
    bbox: tuple[int, int, int, int] | None = None,
    polygon: Sequence[tuple[int, int]] | None = None,
    orient: bool = True,
) -> np.ndarray:
    """Load `path` as 2-D uint8; crop `bbox` (x0, y0, x1, y1) and whiten outside `polygon`.

    What a viewer shows is what is read: 16-bit images are scaled to 8 bits, transparency is
    composited on white, and (with `orient`) the EXIF orientation is applied. Page images that
    regions are cut from (`bbox`, or `orient=False`) are read as stored, since region
    coordinates refer to the stored pixels. Of a multi-page file only the first page is read,
    with a warning. PIL is used rather than cv2.imread because it reads 16-bit TIFFs (CVL) and
    raises instead of returning None on a bad file.
    """
    orient = orient and bbox is None
    try:
        with Image.open(path) as im:
            pages = getattr(im, "n_frames", 1)
            if pages > 1:
                _warn_once(path, f"image {path} has {pages} pages: only the first is read. Fix: "
                           "save each page that holds text as an image of its own")
            turn = orient and orientation(im) not in (None, 1)
            img = to_gray(ImageOps.exif_transpose(im) if turn else im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # FileNotFoundError, UnidentifiedImageError (not an image) and truncation are OSErrors
        raise ImageReadError(f"cannot read image {path}: {err}. {FIX}") from err
    if bbox is None:
        return check_size(img, f"image {path}")
    return crop_region(img, bbox, polygon, name=str(path))


def orientation(im: Image.Image) -> int | None:
    """The EXIF (or TIFF) orientation tag: 1 is upright, 6 means turn 90 degrees to view. Of a
    PNG only an eXIf chunk before the pixels counts: looking for one after them would decode
    the whole image where only its size is wanted."""
    if im.format == "PNG" and "exif" not in im.info:
        return None
    return im.getexif().get(ExifTags.Base.Orientation)


def to_gray(im: Image.Image) -> np.ndarray:
    """8-bit grayscale pixels of a decoded image of any mode."""
    if im.mode in SIXTEEN_BIT:  # convert("L") would clip every value above 255 to white
        return np.clip(np.rint(np.asarray(im, dtype=np.float64) / 257), 0, 255).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        # transparent pixels are black without a background
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    return np.array(im.convert("L"), dtype=np.uint8)


def check_size(img: np.ndarray, what: str, fix: str = FIX) -> np.ndarray:
    """`img`, or an ImageReadError when it is too small to hold any text (e.g. 1x1)."""
    h, w = img.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ImageReadError(f"{what} is {w}x{h} pixels, too small to hold text. {fix}")
    return img


def _warn_once(path: Path, message: str) -> None:
    """A warning per file and process, not one per epoch."""
    if str(path) not in _warned:
        _warned.add(str(path))
        log.warning("%s", message)


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
    crop = check_size(page[y0:y1, x0:x1].copy(), f"region {bbox} of {name}",
                      "Fix: correct the line's coordinates in the dataset's XML (a polygon of "
                      "identical points encloses nothing), or remove the line")
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
