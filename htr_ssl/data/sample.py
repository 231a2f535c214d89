"""The sample record every reader produces and the Dataset/collate that turn it into batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.image import ImageReadError, image_size, load_gray, resize_to_height

log = logging.getLogger(__name__)

Point = tuple[int, int]


@dataclass(frozen=True)
class Sample:
    """One text image: a whole file, or a region cropped from a page image.

    `bbox` is (x0, y0, x1, y1) in page pixels; `polygon`, when given, masks everything outside
    it to white (PAGE/ALTO line polygons). `writer` is the writer id, or the document id where
    the format has no writers.
    """

    id: str
    image_path: Path
    text: str
    writer: str = ""
    split: str = ""
    bbox: tuple[int, int, int, int] | None = None
    polygon: tuple[Point, ...] | None = field(default=None, repr=False)

    def size(self) -> tuple[int, int] | None:
        """(width, height) as stored, without decoding pixels; None if unreadable."""
        if self.bbox is not None:
            return self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]
        return image_size(self.image_path)

    def aspect(self) -> float:
        """Width / height (0 if unreadable): the width after height normalization, per pixel."""
        size = self.size()
        return size[0] / max(size[1], 1) if size else 0.0

    def load(self) -> np.ndarray:
        """Grayscale uint8 pixels of this sample (cropped and masked if it lives on a page)."""
        return load_gray(self.image_path, self.bbox, self.polygon)


@dataclass
class Batch:
    """A padded batch. Images are float in [0, 1], ink dark (1 - pixel/255 is NOT applied)."""

    images: torch.Tensor  # (B, 1, H, Wmax) float32, padding = 1.0 (white)
    widths: torch.Tensor  # (B,) int64, true widths before padding
    targets: torch.Tensor  # (B, Lmax) int64, padded with 0
    target_lengths: torch.Tensor  # (B,) int64
    ids: list[str]
    texts: list[str]
    dropped: int = 0  # unreadable images left out of this batch

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.images.to(device, non_blocking=True),
            self.widths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
            self.ids,
            self.texts,
            self.dropped,
        )

    def __len__(self) -> int:
        return len(self.ids)


class TextImageDataset(Dataset):
    """Reads samples as grayscale uint8, augments, normalizes height, encodes the text.

    An unreadable image yields ``None`` (the collate drops it and counts it) unless
    ``strict=True``, so a bad file never kills a DataLoader worker mid-epoch.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        alphabet: Alphabet | None = None,
        height: int = 64,
        augment: Callable[[np.ndarray, int | None], np.ndarray] | None = None,
        max_width: int | None = None,
        strict: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.alphabet = alphabet
        self.height = height
        self.augment = augment
        self.max_width = max_width
        self.strict = strict

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, index: int, seed: int | None = None) -> np.ndarray:
        """The augmented, height-normalized uint8 image of one sample."""
        img = self.samples[index].load()
        if self.augment is not None:
            img = self.augment(img, seed)
        return resize_to_height(img, self.height, self.max_width)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | None:
        """`key` is an index, or (index, augmentation seed) as yielded by EpochSampler."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        sample = self.samples[index]
        try:
            img = self.image(index, seed)
        except ImageReadError as err:
            if self.strict:
                raise
            log.warning("skipping sample %s: %s", sample.id, err)
            return None
        target = self.alphabet.encode(sample.text, sample_id=sample.id) if self.alphabet else []
        return {
            "image": torch.from_numpy(img),
            "target": torch.tensor(target, dtype=torch.long),
            "id": sample.id,
            "text": sample.text,
        }


def collate(items: Sequence[dict | None], width_multiple: int = 32) -> Batch:
    """Pad to the widest image (white) and longest target; drop unreadable (None) items.

    The padded width is rounded up to `width_multiple` so that batches share a few shapes:
    oneDNN and cuDNN build kernels per input shape, and a new width every step costs more
    than the extra padding.
    """
    kept = [it for it in items if it is not None]
    if not kept:
        raise ImageReadError("every image in this batch was unreadable; see the warnings above")
    height = kept[0]["image"].shape[0]
    widths = torch.tensor([it["image"].shape[1] for it in kept], dtype=torch.long)
    lengths = torch.tensor([len(it["target"]) for it in kept], dtype=torch.long)
    padded = -(-int(widths.max()) // width_multiple) * width_multiple
    images = torch.ones(len(kept), 1, height, padded, dtype=torch.float32)
    targets = torch.zeros(len(kept), max(int(lengths.max()), 1), dtype=torch.long)
    for i, it in enumerate(kept):
        images[i, 0, :, : widths[i]] = it["image"].float() / 255.0
        targets[i, : lengths[i]] = it["target"]
    return Batch(images, widths, targets, lengths, [it["id"] for it in kept],
                 [it["text"] for it in kept], len(items) - len(kept))
