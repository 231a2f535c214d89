"""The `seqclr` recipe keeps the views of a line horizontally aligned (SeqCLR contrasts column
ranges of one view with the same ranges of the other, so a shifted or mirrored view would make
the positives wrong) while still changing the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.sample import Sample, TextImageDataset
from htr_ssl.data.transforms import AugmentConfig, as_callable, build_augment

HEIGHT, WIDTH, BAR = 64, 480, 120  # the bar sits at a quarter of the width: a flip moves it


@pytest.fixture
def bar_line(tmp_path: Path) -> Sample:
    """A white line with a grey text-like band and one black vertical bar at column BAR."""
    img = np.full((HEIGHT, WIDTH), 255, np.uint8)
    img[24:40, 20:WIDTH - 20] = 200
    img[8:HEIGHT - 8, BAR - 3:BAR + 3] = 0
    path = tmp_path / "bar.png"
    Image.fromarray(img).save(path)
    return Sample("bar", path, "")


def bar_column(view: np.ndarray) -> float:
    """Column of the darkest column mean, as a fraction of the view's width."""
    return float(np.argmin(view.astype(np.float32).mean(0))) / view.shape[1]


def test_views_stay_horizontally_aligned(bar_line: Sample) -> None:
    augment = as_callable(build_augment(AugmentConfig("seqclr", p=1.0)))
    data = TextImageDataset([bar_line], None, HEIGHT, augment, views=4)
    changed = 0
    for seed in range(12):
        views = [v.numpy() for v in data[(0, seed)]["views"]]
        assert len({v.shape for v in views}) == 1, "views must share one width"
        for v in views:
            assert abs(bar_column(v) - BAR / WIDTH) < 0.025, f"seed {seed}: bar moved"
        changed += int(np.abs(views[0].astype(int) - views[1].astype(int)).mean() > 2)
    assert changed >= 10, "the views should differ: the recipe must augment"


def test_vertical_crop_cuts_rows(tmp_path: Path) -> None:
    """A dark rule in the top 3 rows: crops of up to 10 % of the height remove it in some
    views and keep it in others; the other ops (small rotation, y-scale, perspective) keep it."""
    img = np.full((HEIGHT, WIDTH), 255, np.uint8)
    img[:3] = 0
    Image.fromarray(img).save(tmp_path / "rule.png")
    augment = as_callable(build_augment(AugmentConfig("seqclr", p=1.0)))
    data = TextImageDataset([Sample("rule", tmp_path / "rule.png", "")], None, HEIGHT, augment)
    # how much darker the darkest row is than the paper: ~100 while the rule is there, ~0 once
    # cropped away (without the crop every one of these 16 views keeps it, at > 40)
    contrast = []
    for seed in range(16):
        view = data[(0, seed)]["image"].numpy().astype(np.float32)
        contrast.append(float(np.median(view) - view.mean(1).min()))
    assert sum(c < 20 for c in contrast) >= 3 and max(contrast) > 60, contrast
