"""Rendered text lines shared by the pretext tests."""

from __future__ import annotations

import numpy as np
import pytest
from pretext_lines import render_lines


@pytest.fixture(scope="session")
def lines() -> list[np.ndarray]:
    return render_lines(96)
