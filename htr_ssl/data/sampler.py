"""A sampler whose order depends only on (seed, epoch), so a run can stop and resume exactly."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (index, augmentation seed) pairs.

    The permutation comes from a generator seeded with (seed, epoch); `start` skips the items a
    resumed run has already consumed in this epoch. With `world > 1` each rank takes every
    world-th item of the same permutation (padded by wrap-around so ranks get equal counts),
    which replaces DistributedSampler.

    Given `widths` (e.g. aspect ratios) and `batch_size`, items are bucketed: each window of
    `pool` batches is sorted by width and cut into batches whose order is then shuffled, so a
    batch pads little (text lines vary 5x in width) while epochs stay random. Without shuffle,
    the whole set is sorted by width.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world: int = 1, widths: Sequence[float] | None = None, batch_size: int = 1,
                 pool: int = 50) -> None:
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if widths is not None and len(widths) != n:
            raise ValueError(f"{len(widths)} widths for {n} items")
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.widths, self.batch_size, self.pool = widths, batch_size * world, pool
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.shuffle:
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.widths is not None:
            order = self._bucket(order, g)
        per_rank = math.ceil(self.n / self.world)
        order += order[: per_rank * self.world - self.n]
        return order[self.rank :: self.world]

    def _bucket(self, order: list[int], g: torch.Generator) -> list[int]:
        w = self.widths
        if not self.shuffle:
            return sorted(order, key=lambda i: w[i])
        out: list[int] = []
        for batches in sorted_windows(w, self.batch_size, self.batch_size * self.pool, order):
            for b in torch.randperm(len(batches), generator=g).tolist():
                out += batches[b]
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        base = (self.seed * 1_000_003 + self.epoch) * 10_000_019
        for idx in self._order()[self.start :]:
            yield idx, (base + idx) % (2**31 - 1)

    def __len__(self) -> int:
        return math.ceil(self.n / self.world) - self.start


def sorted_windows(widths: Sequence[float], batch_size: int, window: int,
                   order: Sequence[int] | None = None) -> list[list[list[int]]]:
    """The items of `order` (default: all, in input order) in windows of `window` consecutive
    items, each window cut into batches of similar width (sorted by width): batches pad
    little, yet a reader can hand results out in input order one window at a time, and the
    training sampler can shuffle batches within a window."""
    if batch_size < 1 or window < 1:
        raise ValueError(f"batch_size and window must be >= 1, got {batch_size} and {window}")
    order = range(len(widths)) if order is None else order
    out = []
    for lo in range(0, len(order), window):
        chunk = sorted(order[lo : lo + window], key=lambda i: widths[i])
        out.append([chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)])
    return out
