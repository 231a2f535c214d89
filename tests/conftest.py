"""Shared test set-up: headless plotting, no albumentations update check, fast torch."""

import os
import tempfile

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="htr_ssl_test_cache_")  # crop cache

import torch

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))  # 1 on a busy machine


import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

WORDS = ("cat", "dog", "sun", "hat", "map", "pen", "cup", "box")


@pytest.fixture(scope="session")
def tiny_lines(tmp_path_factory):
    """A folder dataset (image + same-stem .txt) of 30 printed two-word lines, 32 px high."""
    root = tmp_path_factory.mktemp("tiny_lines")
    rng = np.random.default_rng(0)
    for i in range(30):
        text = " ".join(rng.choice(WORDS, 2, replace=False))
        img = np.full((32, 140), 255, np.uint8)
        cv2.putText(img, text, (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
        cv2.imwrite(str(root / f"{i:03d}.png"), img)
        (root / f"{i:03d}.txt").write_text(text)
    return root
