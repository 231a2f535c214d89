"""Rendered text lines for pretext tests: variable widths, white padding, two aligned views."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from htr_ssl.data.sample import Batch

WORDS = ("cat", "dog", "sun", "hat", "map", "pen", "cup", "box", "quick", "fox", "jumps",
         "over", "lazy", "brown", "the", "and")
HEIGHT = 32


def render_lines(n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` lines of 2-4 random words (Hershey fonts of varying size and weight), 32 px high."""
    rng = np.random.default_rng(seed)
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS, int(rng.integers(2, 5))))
        font, scale = fonts[int(rng.integers(3))], float(rng.uniform(0.55, 0.75))
        thick = int(rng.integers(1, 3))
        (w, _), _ = cv2.getTextSize(text, font, scale, thick)
        img = np.full((HEIGHT, w + 8), 255, np.uint8)
        cv2.putText(img, text, (4, HEIGHT - 9), font, scale, 0, thick, cv2.LINE_AA)
        out.append(img)
    return out


def to_batch(imgs: list[np.ndarray], views: int = 1, seed: int = 0) -> Batch:
    """Pad to a batch; extra views are the same lines with independent contrast, noise and
    a small vertical shift (aligned horizontally, as SeqCLR's augmentations keep them)."""
    rng = np.random.default_rng(seed)
    widths = torch.tensor([im.shape[1] for im in imgs])
    all_views = torch.ones(views, len(imgs), 1, HEIGHT, int(widths.max()))
    for v in range(views):
        for i, im in enumerate(imgs):
            x = torch.from_numpy(im).float() / 255.0
            if v > 0:
                x = torch.roll(x, int(rng.integers(-2, 3)), dims=0)
                x = (x * rng.uniform(0.7, 1.0) + rng.uniform(0, 0.2)).clamp(0, 1)
                x = (x + torch.from_numpy(rng.normal(0, 0.05, x.shape)).float()).clamp(0, 1)
            all_views[v, i, 0, :, : im.shape[1]] = x
    n = len(imgs)
    return Batch(all_views[0], widths, torch.zeros(n, 1, dtype=torch.long),
                 torch.zeros(n, dtype=torch.long), [str(i) for i in range(n)], [""] * n, 0,
                 all_views if views > 1 else None)


