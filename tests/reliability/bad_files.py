"""Fabricated bad files for the reliability tests: images that load wrong, checkpoints that
carry code, an image header that claims a gigapixel."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def gray16(path: Path, value: int = 40_000, height: int = 20, width: int = 60) -> Path:
    """A 16-bit grayscale image (PNG or TIFF by suffix): `value` of 65535."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, dtype=np.uint16)).save(path)
    return path


def transparent(path: Path, mode: str = "RGBA") -> Path:
    """Black ink (a bar in the middle) on a fully transparent background, as RGBA or LA."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((20, 60, len(mode)), dtype=np.uint8)  # transparent black everywhere
    pixels[8:12, 10:50, -1] = 255  # opaque black ink
    Image.fromarray(pixels, mode).save(path)
    return path


def rotated_jpeg(path: Path, height: int = 20, width: int = 60) -> Path:
    """A JPEG stored `height` x `width` whose EXIF orientation 6 says: turn 90 degrees to view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((height, width), 200, dtype=np.uint8)).save(path, exif=exif)
    return path


def multipage_tiff(path: Path) -> Path:
    """A TIFF of two pages: a light one, then a dark one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    light, dark = (Image.fromarray(np.full((20, 60), v, dtype=np.uint8)) for v in (220, 30))
    light.save(path, save_all=True, append_images=[dark])
    return path


def bomb_png(path: Path, side: int = 30_000) -> Path:
    """A PNG header that claims `side` x `side` pixels (a decompression bomb), no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


class Payload:
    """Pickles as a call to os.system: loading it without weights_only runs the command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_checkpoint(path: Path, marker: Path, **content) -> Path:
    """A .pt that looks like an htr-ssl checkpoint and creates `marker` when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "kind": "recognizer", **content, "note": Payload(marker)}, path)
    return path
