"""Augmentation recipes (albumentations 2.0.8) applied to uint8 grayscale arrays.

Recipes follow HTR best practices (Retsinas et al. 2022): mild affine with shear, elastic or
grid distortion, stroke-width change by erosion/dilation, brightness/contrast, noise and blur.
`seqclr` keeps two views horizontally aligned (no flips, tiny rotations, no horizontal crops,
vertical crops only).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np

RECIPES = ("none", "light", "htr", "seqclr")
MIN_AUGMENT_SIDE = 8  # GridDistortion (5 steps) and Perspective divide by zero below this


@dataclass(frozen=True)
class AugmentConfig:
    """Which recipe a stage uses and how strongly (`p` scales every transform's probability)."""

    recipe: str = "none"
    p: float = 0.5


class _Morphology(A.ImageOnlyTransform):
    """Erode or dilate strokes (ink is dark: erosion thickens, dilation thins)."""

    def __init__(self, max_kernel: int = 3, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.max_kernel = max_kernel

    def get_params(self) -> dict:
        k = int(self.py_random.randint(2, self.max_kernel))
        return {"k": k, "dilate": self.py_random.random() < 0.5}

    def apply(self, img: np.ndarray, k: int = 2, dilate: bool = False, **params) -> np.ndarray:
        kernel = np.ones((k, k), np.uint8)
        return cv2.dilate(img, kernel) if dilate else cv2.erode(img, kernel)


def _white(img_kwargs: dict) -> dict:
    return {**img_kwargs, "border_mode": cv2.BORDER_CONSTANT, "fill": 255}


def build_augment(cfg: AugmentConfig, seed: int | None = None) -> A.Compose | None:
    """An albumentations pipeline for `cfg.recipe`, or None for `none`."""
    p = cfg.p
    if cfg.recipe == "none":
        return None
    if cfg.recipe == "light":
        ops = [
            A.Affine(**_white({"shear": {"x": (-5, 5), "y": 0}, "scale": (0.95, 1.05)}), p=p),
            A.RandomBrightnessContrast(0.2, 0.2, p=p),
        ]
    elif cfg.recipe == "htr":
        ops = [
            A.Affine(**_white({"shear": {"x": (-20, 20), "y": 0}, "rotate": (-2, 2),
                               "scale": (0.85, 1.1), "translate_percent": (-0.02, 0.02)}), p=p),
            A.OneOf([
                A.ElasticTransform(alpha=20, sigma=5, border_mode=cv2.BORDER_CONSTANT, fill=255),
                A.GridDistortion(num_steps=5, distort_limit=0.2, border_mode=cv2.BORDER_CONSTANT,
                                 fill=255),
            ], p=p * 0.5),
            _Morphology(max_kernel=3, p=p * 0.5),
            A.RandomBrightnessContrast(0.3, 0.3, p=p),
            A.GaussNoise(std_range=(0.02, 0.08), p=p * 0.5),
            A.GaussianBlur(blur_limit=(3, 5), p=p * 0.3),
        ]
    elif cfg.recipe == "seqclr":
        # SeqCLR (Aberdam et al. 2021): every op keeps column x of a line at column x (up to
        # the linear rescale TextImageDataset applies to line the views up): no flips, no
        # horizontal crops or x-scaling, rotations of a degree, a perspective whose corners move
        # by 1-2 % (at 2-5 % columns of a long line moved by up to 5 % of its width). The
        # vertical crop cuts up to 10 % of the rows off the top and off the bottom; height
        # normalization then restores the height.
        ops = [
            A.RandomCropFromBorders(crop_left=0.0, crop_right=0.0, crop_top=0.1,
                                    crop_bottom=0.1, p=p),
            A.Affine(**_white({"shear": {"x": (-10, 10), "y": 0}, "rotate": (-1, 1),
                               "scale": {"x": (1.0, 1.0), "y": (0.8, 1.0)}}), p=p),
            A.Perspective(scale=(0.01, 0.02), fit_output=True, border_mode=cv2.BORDER_CONSTANT,
                          fill=255, p=p * 0.5),
            A.RandomBrightnessContrast(0.4, 0.4, p=p),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.Sharpen()], p=p),
            A.GaussNoise(std_range=(0.02, 0.1), p=p * 0.5),
        ]
    else:
        raise ValueError(f"unknown augmentation recipe {cfg.recipe!r}; use one of {RECIPES}")
    return A.Compose(ops, seed=seed)


Augment = Callable[[np.ndarray, "int | None"], np.ndarray]


def pad_small(img: np.ndarray, side: int = MIN_AUGMENT_SIDE) -> np.ndarray:
    """A tiny image padded with white (to the right and below) up to `side` pixels, so that no
    augmentation divides by its size; larger images are returned as they are."""
    h, w = img.shape[:2]
    if h >= side and w >= side:
        return img
    return cv2.copyMakeBorder(img, 0, max(0, side - h), 0, max(0, side - w),
                              cv2.BORDER_CONSTANT, value=255)


def as_callable(pipeline: A.Compose | None) -> Augment | None:
    """Wrap a Compose as `(uint8 array, seed) -> uint8 array`, the form TextImageDataset expects.

    A per-sample seed makes augmentation reproducible whatever the worker layout, which is
    what lets a resumed run continue exactly.
    """
    if pipeline is None:
        return None

    def apply(img: np.ndarray, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            pipeline.set_random_seed(seed)
        return pipeline(image=pad_small(img))["image"]

    return apply
