"""A FIFO queue of past embeddings: extra negatives (moco) or extra rows for Sinkhorn (swav).

The queue is a buffer, so it is saved with the checkpoint and resume continues with the same
negatives. Rows are filled oldest-first and only filled rows are ever returned, so an empty
queue adds nothing (no random vectors posing as negatives). Under torchrun the caller pushes
the keys gathered from every rank, so every rank holds the same queue.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureQueue(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 0 or dim < 1:
            raise ValueError(f"queue size {size} must be >= 0 and dim {dim} >= 1")
        self.register_buffer("rows", torch.zeros(size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.rows.shape[0]

    def get(self) -> torch.Tensor:
        """A copy of the filled rows (count, dim), in storage order (the order does not matter
        to a softmax over negatives or to Sinkhorn). A copy, because autograd keeps it for the
        backward while `push` already overwrites the buffer."""
        return self.rows[: int(self.count)].clone()

    @torch.no_grad()
    def push(self, x: torch.Tensor) -> None:
        """Add rows (N, dim), overwriting the oldest; with N > size only the last size rows."""
        size = self.size
        if size == 0 or len(x) == 0:
            return
        x = x.detach()[-size:].to(self.rows.dtype)
        idx = (int(self.ptr) + torch.arange(len(x), device=x.device)) % size
        self.rows[idx] = x
        self.ptr.fill_((int(self.ptr) + len(x)) % size)
        self.count.fill_(min(size, int(self.count) + len(x)))
