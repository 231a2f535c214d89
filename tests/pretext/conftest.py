"""Text lines shared by the pretext tests: rendered ones, and a few real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pretext_lines import HEIGHT, render_lines

from htr_ssl.data.image import load_gray, resize_to_height

CREMMA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cremma-mss-18"


@pytest.fixture(scope="session")
def lines() -> list[np.ndarray]:
    return render_lines(96)


@pytest.fixture(scope="session")
def real_lines() -> list[np.ndarray]:
    """112 real handwritten lines of CREMMA-MSS-18 at 32 px: 80 of its 6 training documents
    (every 29th), then 32 of the 2 validation documents (every 10th), unseen in training."""
    manifest = CREMMA / "manifest.tsv"
    if not manifest.is_file():
        pytest.skip("the CREMMA-MSS-18 dev set is not in ../shared")
    rows = [row.split("\t") for row in manifest.read_text(encoding="utf-8").splitlines()]
    picked = ([r for r in rows if r[3] == "train"][::29][:80]
              + [r for r in rows if r[3] == "val"][::10][:32])
    return [resize_to_height(load_gray(CREMMA / r[0]), HEIGHT) for r in picked]
