"""Puzzle pretexts: cut each line into vertical strips, shuffle them, and make the encoder tell
how they were shuffled.

A line is cut along the writing direction into `strips` pieces over its true width only, so
the padding never moves and never gives a cue. Strip boundaries fall on whole encoder frames
(multiples of `encoder.wstride`), so every frame belongs to exactly one strip; the last few
columns of a line that do not fill a frame stay in place at the end. The shuffled line, with
the same width, goes through the encoder, and each strip's frames are averaged into one
feature per strip. Lines too short to give every strip a frame are left out of the loss and
counted in the `short` metric (% of lines).

- `jigsaw` (Noroozi and Favaro 2016): classify which of K fixed permutations was applied. The
  K permutations are chosen greedily to be far apart in Hamming distance, so no two classes
  differ by a small move of the pieces.
- `sorting`: give every strip its original position (n classes per strip): the model must put
  all the pieces in order, not just recognise one of K shuffles.

Edges: with `gap=0` (the default) strokes cut by a boundary continue, or not, across it. For
arbitrary text that continuity is most of what tells the order of the inner strips (the words
in a line are not predictable from each other), and matching stroke ends is a local shape cue
a recognizer uses too, so it is kept. `gap=G` paints G white columns between strips (split
over both edges of every strip) to take it away, as Noroozi and Favaro's gaps between tiles do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.base import Metrics, Pretext, chance, mlp

MAX_JIGSAW_STRIPS = 9  # the set is chosen from all n! permutations: 9! = 362,880 is still quick
GREEDY_WORK = 20_000_000  # restarts of the greedy search while n! * n * K * restarts stays under


def _check_puzzle(name: str, strips: int, gap: int, hidden: int) -> None:
    if strips < 2:
        raise ValueError(f"pretext.{name}.strips={strips}: a puzzle needs at least 2 strips")
    if gap < 0:
        raise ValueError(f"pretext.{name}.gap={gap}: use 0 (no gap) or a positive pixel count")
    if hidden < 1:
        raise ValueError(f"pretext.{name}.hidden={hidden}: must be at least 1")


@dataclass
class JigsawConfig:
    """`strips` pieces per line; `permutations` = K classes (at most strips!); `seed` fixes
    which K permutations; `gap` white pixels between strips (0 keeps stroke continuity)."""

    strips: int = 4
    permutations: int = 12  # for 4 strips: the most with every pair differing in >= 3 places
    gap: int = 0
    seed: int = 0
    hidden: int = 256
    contextual: bool = True

    def __post_init__(self) -> None:
        _check_puzzle("jigsaw", self.strips, self.gap, self.hidden)
        if self.strips > MAX_JIGSAW_STRIPS:
            raise ValueError(f"pretext.jigsaw.strips={self.strips}: at most {MAX_JIGSAW_STRIPS} "
                             "(the permutation set is searched among all strips! orders)")
        most = math.factorial(self.strips)
        if not 2 <= self.permutations <= most:
            raise ValueError(f"pretext.jigsaw.permutations={self.permutations}: {self.strips} "
                             f"strips have {most} orders; choose 2..{most}")


@dataclass
class SortingConfig:
    """`strips` pieces per line, each classified into its original position (chance 1/strips);
    `gap` white pixels between strips; `contextual` lets a strip's feature see its neighbours."""

    strips: int = 4
    gap: int = 0
    hidden: int = 256
    contextual: bool = True

    def __post_init__(self) -> None:
        _check_puzzle("sorting", self.strips, self.gap, self.hidden)


def hamming_table(perms: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances (number of positions that differ) of (K, n) permutations."""
    return (perms[:, None, :] != perms[None, :, :]).sum(-1)


def min_hamming_distance(perms: np.ndarray | torch.Tensor) -> int:
    """The smallest Hamming distance between two different permutations of the set."""
    table = hamming_table(np.asarray(perms))
    np.fill_diagonal(table, table.shape[1] + 1)
    return int(table.min())


def distance_guarantee(n: int, k: int) -> int:
    """The minimum distance greedy max-min selection is sure to reach: the largest d with
    (k - 1) * V(d - 1) < n!, V(r) being how many permutations lie within distance r of one.
    While the chosen set's balls of radius d - 1 leave a permutation uncovered, the next pick
    is at distance >= d from all of them (a Gilbert-Varshamov argument)."""
    derangements = [1, 0]
    for m in range(2, n + 1):
        derangements.append((m - 1) * (derangements[-1] + derangements[-2]))
    best = 1
    for d in range(2, n + 1):
        ball = sum(math.comb(n, j) * derangements[j] for j in range(d))
        if (k - 1) * ball < math.factorial(n):
            best = d
    return best


def maximal_hamming_permutations(n: int, k: int, seed: int = 0) -> torch.Tensor:
    """K permutations of range(n) far apart (Noroozi and Favaro 2016): start from a random one
    and add, again and again, the permutation whose minimum Hamming distance to those chosen is
    largest (ties drawn at random). The greedy pass is repeated from several random starts while
    that stays cheap, keeping the set with the largest minimum distance. Deterministic in `seed`.
    """
    if not 2 <= k <= math.factorial(n):
        raise ValueError(f"pretext.jigsaw.permutations={k}: {n} strips have "
                         f"{math.factorial(n)} orders; choose 2..{math.factorial(n)}")
    every = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    rng = np.random.default_rng(seed)
    restarts = max(1, min(16, GREEDY_WORK // (len(every) * n * k)))
    best, best_d = None, -1
    for _ in range(restarts):
        chosen = [int(rng.integers(len(every)))]
        nearest = (every != every[chosen[0]]).sum(1)
        for _ in range(k - 1):
            ties = np.flatnonzero(nearest == nearest.max())
            pick = int(rng.choice(ties))
            chosen.append(pick)
            nearest = np.minimum(nearest, (every != every[pick]).sum(1))
        d = min_hamming_distance(every[chosen])
        if d > best_d:
            best, best_d = chosen, d
    return torch.from_numpy(every[best].astype(np.int64))


class _StripPuzzle(Pretext):
    """What jigsaw and sorting share: cutting, shuffling, encoding, pooling per strip."""

    def shuffle(self, images: torch.Tensor, widths: torch.Tensor, wstride: int,
                perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut each line into strips of whole frames and put original strip perm[b, j] at
        position j -> (shuffled images, frame bounds of the strips before shuffling)."""
        bounds = ops.strip_bounds(widths // wstride, self.cfg.strips)
        pixels = bounds * wstride
        images = ops.whiten_strip_edges(images, pixels, widths, self.cfg.gap)
        return ops.permute_strips(images, pixels, perm), bounds

    def strip_features(self, encoder: Encoder, batch: Batch, perm: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffle each line's strips by `perm` (B, n) -> (features (B, n, C) in shuffled order,
        mask of the lines long enough to cut)."""
        widths = batch.widths.to(batch.images.device)
        shuffled, bounds = self.shuffle(batch.images, widths, encoder.wstride, perm)
        frames, _ = encoder(shuffled, widths, self.cfg.contextual)
        keep = bounds[:, -1] > 0
        return ops.strip_means(frames, ops.permuted_bounds(bounds, perm)), keep


def _mean_over_kept(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over the lines in `keep` (0 when none: the batch is then skipped);
    not base.masked_mean, which averages frames within each line."""
    keep = keep.to(values.dtype)
    return (values * keep).sum() / keep.sum().clamp(min=1)


def _short(keep: torch.Tensor) -> torch.Tensor:
    return (~keep).float().mean().detach() * 100


class Jigsaw(_StripPuzzle):
    """Classify which of the K far-apart permutations shuffled the strips (chance 100/K %).

    The head sees the strip features concatenated in shuffled order. The permutation set is a
    buffer, so a checkpoint carries the exact classes it was trained with.
    """

    def __init__(self, cfg: JigsawConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.register_buffer("perms", maximal_hamming_permutations(
            cfg.strips, cfg.permutations, cfg.seed))
        self.head = mlp(cfg.strips * encoder.dim(cfg.contextual), cfg.hidden, cfg.permutations)

    @property
    def min_distance(self) -> int:
        """Smallest Hamming distance between two of the K permutations."""
        return min_hamming_distance(self.perms.cpu())

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        label = torch.randint(len(self.perms), (len(batch.widths),), device=batch.images.device)
        feats, keep = self.strip_features(encoder, batch, self.perms[label])
        logits = self.head(feats.flatten(1))
        loss = _mean_over_kept(F.cross_entropy(logits.float(), label, reduction="none"), keep)
        hit = (logits.detach().argmax(-1) == label).float()
        return loss, {"acc": _mean_over_kept(hit, keep).detach() * 100,
                      "chance": chance(len(self.perms), hit), "short": _short(keep)}


class Sorting(_StripPuzzle):
    """Give every strip of a randomly shuffled line its original position.

    The target of the strip at shuffled position j is perm[j]. The head sees all the strip
    features (concatenated in shuffled order) and gives n position logits for each strip; the
    loss is the cross-entropy over all strips. Seeing every strip lets the head compare them
    (whose right edge meets whose left edge, which one starts the line); a head that saw only
    its own strip's contextual feature learned mostly to memorise which strip content sits
    where (rendered lines, 60 steps: 90 % right on seen lines, 55 % on new ones).
    Metrics: `acc` = % of strips placed right (chance 100/strips), `order_acc` = % of lines
    with every strip right (chance 100/strips!).
    """

    def __init__(self, cfg: SortingConfig, encoder: Encoder) -> None:
        super().__init__(cfg, encoder)
        self.head = mlp(cfg.strips * encoder.dim(cfg.contextual), cfg.hidden, cfg.strips ** 2)

    def forward(self, encoder: Encoder, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        b, n = len(batch.widths), self.cfg.strips
        perm = torch.rand(b, n, device=batch.images.device).argsort(1)
        feats, keep = self.strip_features(encoder, batch, perm)
        logits = self.head(feats.flatten(1)).view(b, n, n)
        ce = F.cross_entropy(logits.float().reshape(b * n, n), perm.reshape(-1),
                             reduction="none").view(b, n).mean(1)
        hit = (logits.detach().argmax(-1) == perm).float()
        return _mean_over_kept(ce, keep), {
            "acc": _mean_over_kept(hit.mean(1), keep).detach() * 100,
            "order_acc": _mean_over_kept(hit.min(1).values, keep).detach() * 100,
            "chance": chance(n, hit), "short": _short(keep),
        }
