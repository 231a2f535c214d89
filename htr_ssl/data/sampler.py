"""A sampler whose order depends only on (seed, epoch), so a run can stop and resume exactly."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (index, augmentation seed) pairs.

    The permutation comes from a generator seeded with (seed, epoch); `start` skips the items a
    resumed run has already consumed in this epoch. With `world > 1` each rank takes every
    world-th item of the same permutation (padded by wrap-around so ranks get equal counts),
    which replaces DistributedSampler.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world: int = 1) -> None:
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.n / self.world)
        order += order[: per_rank * self.world - self.n]
        return order[self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        base = (self.seed * 1_000_003 + self.epoch) * 10_000_019
        for idx in self._order()[self.start :]:
            yield idx, (base + idx) % (2**31 - 1)

    def __len__(self) -> int:
        return math.ceil(self.n / self.world) - self.start
