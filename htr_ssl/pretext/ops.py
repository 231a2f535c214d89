"""Width-aware tensor operations on padded line batches.

A batch pads every line with white to the widest one. Transforms that move pixels along the
writing direction (flips, strips, crops) must act on each line's own width, or the padding
would move into the line and give the pretext a trivial cue.
"""

from __future__ import annotations

import torch


def hflip_within(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Mirror each line left-right inside its true width; padding stays on the right."""
    w_max = images.shape[-1]
    cols = torch.arange(w_max, device=images.device)[None, :]
    w = widths.to(images.device)[:, None]
    src = torch.where(cols < w, w - 1 - cols, cols)  # (B, W)
    index = src[:, None, None, :].expand_as(images)
    return images.gather(-1, index)


def vflip(images: torch.Tensor) -> torch.Tensor:
    """Upside down (white padding stays white, so no width care is needed)."""
    return images.flip(-2)


def select(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample choice: a[i] where mask[i] else b[i]."""
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def uniform_starts(room: torch.Tensor) -> torch.Tensor:
    """One uniform integer in [0, room[i]] per entry (long): where a piece of a line starts
    when `room` columns are left beside it."""
    room = room.long()
    return (torch.rand(len(room), device=room.device) * (room + 1)).long().minimum(room)


def random_square_crops(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """One H x H crop per line at a random offset inside its width (lines narrower than H keep
    their white padding): the square pieces that 90-degree rotations need."""
    b, c, h, w_max = images.shape
    if w_max < h:
        images = torch.nn.functional.pad(images, (0, h - w_max), value=1.0)
    start = uniform_starts((widths.to(images.device) - h).clamp(min=0))
    cols = start[:, None] + torch.arange(h, device=images.device)[None, :]  # (B, H)
    return images.gather(-1, cols[:, None, None, :].expand(b, c, h, h))


def rot90(images: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate each square image by k[i] * 90 degrees counter-clockwise."""
    out = images.clone()
    for quarter in range(1, 4):
        pick = k == quarter
        if pick.any():
            out[pick] = torch.rot90(images[pick], quarter, dims=(-2, -1))
    return out


# Strips: vertical pieces of a line along the writing direction (the puzzle pretexts).
# Boundaries are (B, n + 1) tensors: strip k of line b spans [bounds[b, k], bounds[b, k + 1]).
# A permutation `perm` (B, n) puts original strip perm[b, j] at position j.


def strip_bounds(frames: torch.Tensor, n: int) -> torch.Tensor:
    """Cut each line's `frames` (B,) whole frames into `n` strips of whole frames.

    Sizes differ by at most one frame, and the spare frames (frames % n) go to strips drawn at
    random, so a strip's size never tells its position. Lines with fewer than `n` frames get
    all-zero bounds: no strip, nothing moves (callers skip them).
    """
    b = frames.shape[0]
    frames = frames.long()
    base, spare = frames // n, frames % n
    rank = torch.rand(b, n, device=frames.device).argsort(1).argsort(1)
    sizes = base[:, None] + (rank < spare[:, None]).long()
    sizes = sizes * (frames >= n).long()[:, None]
    return torch.cat([sizes.new_zeros(b, 1), sizes.cumsum(1)], dim=1)


def permuted_bounds(bounds: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Where the strips lie after `permute_strips`: the same sizes, in permuted order."""
    sizes = bounds.diff(dim=1).gather(1, perm)
    return torch.cat([sizes.new_zeros(len(sizes), 1), sizes.cumsum(1)], dim=1)


def _strip_index(bounds: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """For each column (B, W), the strip it lies in; n for columns past the last strip."""
    return torch.searchsorted(bounds[:, 1:].contiguous(), cols.contiguous(), right=True)


def permute_strips(images: torch.Tensor, bounds: torch.Tensor, perm: torch.Tensor
                   ) -> torch.Tensor:
    """Re-concatenate each line's strips (pixel `bounds`) in the order `perm`, in place of the
    originals: columns past the last strip (the rest of a frame, the padding) stay put."""
    b, n = perm.shape
    cols = torch.arange(images.shape[-1], device=images.device).expand(b, -1)
    new = permuted_bounds(bounds, perm)
    pos = _strip_index(new, cols)
    at = pos.clamp(max=n - 1)
    src = bounds.gather(1, perm.gather(1, at)) + cols - new.gather(1, at)
    src = torch.where(pos < n, src, cols)
    return images.gather(-1, src[:, None, None, :].expand_as(images))


def unpermute_strips(images: torch.Tensor, bounds: torch.Tensor, perm: torch.Tensor
                     ) -> torch.Tensor:
    """Undo `permute_strips(images, bounds, perm)` (`bounds` are the original ones)."""
    return permute_strips(images, permuted_bounds(bounds, perm), perm.argsort(1))


def whiten_strip_edges(images: torch.Tensor, bounds: torch.Tensor, widths: torch.Tensor,
                       gap: int) -> torch.Tensor:
    """Paint `gap` white columns between strips (ceil(gap/2) at each strip's start, floor(gap/2)
    at its end, every strip alike) and white the few columns after the last strip, so no stroke
    runs across a cut (Noroozi and Favaro's gaps between tiles). Lines without strips are kept."""
    if gap <= 0:
        return images
    b, n = bounds.shape[0], bounds.shape[1] - 1
    cols = torch.arange(images.shape[-1], device=images.device).expand(b, -1)
    pos = _strip_index(bounds, cols)
    at = pos.clamp(max=n - 1)
    start, end = bounds.gather(1, at), bounds.gather(1, at + 1)
    edge = (cols - start < (gap + 1) // 2) | (end - cols <= gap // 2)
    has_strips = (bounds[:, -1] > 0)[:, None]
    tail = (pos >= n) & (cols < widths.to(images.device)[:, None])
    white = has_strips & torch.where(pos < n, edge, tail)
    return images.masked_fill(white[:, None, None, :], 1.0)


def strip_means(frames: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Mean of each strip's frames: (B, T, C) with frame `bounds` (B, n + 1) -> (B, n, C).
    Empty strips give zeros."""
    t = torch.arange(frames.shape[1], device=frames.device)[None, None, :]
    inside = (t >= bounds[:, :-1, None]) & (t < bounds[:, 1:, None])
    weights = inside.to(frames.dtype) / inside.sum(-1, keepdim=True).clamp(min=1)
    return torch.einsum("bnt,btc->bnc", weights, frames)


def crop_columns(images: torch.Tensor, start: torch.Tensor, size: int) -> torch.Tensor:
    """Columns [start[i], start[i] + size) of each line: (B, C, H, W) -> (B, C, H, size).
    Columns past the batch's width read as white paper."""
    if images.shape[-1] < size:
        images = torch.nn.functional.pad(images, (0, size - images.shape[-1]), value=1.0)
    b, c, h, w = images.shape
    cols = (start.to(images.device).long()[:, None]
            + torch.arange(size, device=images.device)[None, :]).clamp(0, w - 1)
    out = images.gather(-1, cols[:, None, None, :].expand(b, c, h, size))
    beyond = (start.to(images.device).long()[:, None]
              + torch.arange(size, device=images.device)[None, :]) >= w
    return out.masked_fill(beyond[:, None, None, :], 1.0)


def crop_lines(images: torch.Tensor, start: torch.Tensor, sizes: torch.Tensor
               ) -> torch.Tensor:
    """Columns [start[i], start[i] + sizes[i]) of each line, left-aligned and padded white to
    the longest crop: the local views of multi-crop methods (dino, swav)."""
    size = int(sizes.max())
    out = crop_columns(images, start, size)
    beyond = torch.arange(size, device=images.device)[None, :] >= sizes.to(images.device)[:, None]
    return out.masked_fill(beyond[:, None, None, :], 1.0)


def random_segments(widths: torch.Tensor, low: float, high: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, size) of one random horizontal segment per line: a share in [low, high] of its
    width (at least 1 px), at a uniform position inside it."""
    w = widths.long().clamp(min=1)
    share = low + (high - low) * torch.rand(len(w), device=w.device)
    sizes = (share * w).round().long().clamp(1, None).minimum(w)
    start = uniform_starts(w - sizes)
    return start, sizes
