"""The sample record every reader produces and the Dataset/collate that turn it into batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
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
    # (V, B, 1, H, Wmax): V differently augmented views of each image, all of the first view's
    # width (horizontally aligned), for contrastive pretexts; `images` is views[0]. None if V = 1.
    views: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        views = self.views.to(device, non_blocking=True) if self.views is not None else None
        return Batch(
            views[0] if views is not None else self.images.to(device, non_blocking=True),
            self.widths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
            self.ids,
            self.texts,
            self.dropped,
            views,
        )

    def pin_memory(self) -> Batch:
        """Page-locked copies (DataLoader(pin_memory=True) calls this), so that
        `.to(cuda)` copies asynchronously."""
        views = self.views.pin_memory() if self.views is not None else None
        images = views[0] if views is not None else self.images.pin_memory()
        return Batch(images, self.widths.pin_memory(), self.targets.pin_memory(),
                     self.target_lengths.pin_memory(), self.ids, self.texts, self.dropped, views)

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
        views: int = 1,
    ) -> None:
        if views < 1 or (views > 1 and augment is None):
            raise ValueError(f"views={views}: need >= 1, and an augmentation for more than one")
        self.views = views
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
                raise ImageReadError(f"sample {sample.id}: {err}") from err
            log.warning("skipping sample %s: %s", sample.id, err)
            return None
        target = self.alphabet.encode(sample.text, sample_id=sample.id) if self.alphabet else []
        item = {
            "image": torch.from_numpy(img),
            "target": torch.tensor(target, dtype=torch.long),
            "id": sample.id,
            "text": sample.text,
        }
        if self.views > 1:
            item["views"] = [item["image"]] + [
                torch.from_numpy(self._aligned_view(index, img.shape[1], seed, k))
                for k in range(1, self.views)]
        return item

    def _aligned_view(self, index: int, width: int, seed: int | None, k: int) -> np.ndarray:
        """Another augmentation of the same image, scaled to the first view's width so that
        column x of both views shows the same stretch of writing."""
        view_seed = None if seed is None else (seed * 7919 + k) % (2**31 - 1)
        img = self.image(index, view_seed)
        if img.shape[1] != width:
            img = cv2.resize(img, (width, self.height), interpolation=cv2.INTER_AREA)
        return img


def collate(items: Sequence[dict | None], width_multiple: int = 32) -> Batch:
    """Pad to the widest image (white) and longest target; drop unreadable (None) items.

    The padded width is rounded up to `width_multiple` so that batches share a few shapes:
    oneDNN and cuDNN build kernels per input shape, and a new width every step costs more
    than the extra padding.
    """
    kept = [it for it in items if it is not None]
    if not kept:
        raise ImageReadError("every image in this batch was unreadable; see the warnings above")
    return _pad(kept, len(items) - len(kept), width_multiple)


def collate_readable(items: Sequence[dict | None], width_multiple: int = 32) -> Batch:
    """`collate` for reading and scoring: a batch whose images were all unreadable becomes an
    empty batch (its `dropped` counts them), so the lines read before and after it are kept."""
    kept = [it for it in items if it is not None]
    if not kept:
        return Batch(torch.ones(0, 1, 1, width_multiple), torch.zeros(0, dtype=torch.long),
                     torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long), [],
                     [], len(items))
    return _pad(kept, len(items) - len(kept), width_multiple)


def _pad(kept: Sequence[dict], dropped: int, width_multiple: int) -> Batch:
    height = kept[0]["image"].shape[0]
    widths = torch.tensor([it["image"].shape[1] for it in kept], dtype=torch.long)
    lengths = torch.tensor([len(it["target"]) for it in kept], dtype=torch.long)
    padded = -(-int(widths.max()) // width_multiple) * width_multiple
    n_views = len(kept[0].get("views", [None]))
    views = torch.ones(n_views, len(kept), 1, height, padded, dtype=torch.float32)
    targets = torch.zeros(len(kept), max(int(lengths.max()), 1), dtype=torch.long)
    for i, it in enumerate(kept):
        for v, img in enumerate(it.get("views", [it["image"]])):
            views[v, i, 0, :, : widths[i]] = img.float() / 255.0
        targets[i, : lengths[i]] = it["target"]
    return Batch(views[0], widths, targets, lengths, [it["id"] for it in kept],
                 [it["text"] for it in kept], dropped, views if n_views > 1 else None)
