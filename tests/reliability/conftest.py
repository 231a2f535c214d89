"""Fixtures for the reliability tests: tiny images written with PIL, console commands."""

from __future__ import annotations

import os
import subprocess
import sys
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


ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}


@pytest.fixture
def cli():
    """Run a console command as a user does (`python -m htr_ssl.cli.<module> key=value ...`)."""

    def run(module: str, *args: str, cwd: Path, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", f"htr_ssl.cli.{module}", *args], cwd=cwd,
                              env=ENV, capture_output=True, text=True, timeout=timeout)

    return run
