"""Fixtures for the reliability tests: tiny images written with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def write_image():
    """Write a grayscale image (default 20x60, mid-gray) to `path`, creating parent folders."""

    def write(path: Path, height: int = 20, width: int = 60, value: int = 100) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((height, width), value, dtype=np.uint8)).save(path)
        return path

    return write
