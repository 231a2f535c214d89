"""Jigsaw and sorting: strips are cut within each line's width on whole frames, the recorded
target undoes the shuffle exactly, and the jigsaw classes are as far apart as promised."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext import ops
from htr_ssl.pretext.puzzle import (
    Jigsaw,
    JigsawConfig,
    Sorting,
    SortingConfig,
    distance_guarantee,
    maximal_hamming_permutations,
    min_hamming_distance,
)

STRIDE = 4


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Random lines of varied widths (one too short for 4 strips of a frame) in white padding."""
    torch.manual_seed(0)
    widths = torch.tensor([61, 96, 10, 37, 45])
    images = torch.ones(len(widths), 1, 16, 96)
    for i, w in enumerate(widths):
        images[i, :, :, :w] = torch.rand(1, 16, int(w))
    return images, widths


def as_batch(images: torch.Tensor, widths: torch.Tensor) -> Batch:
    n = len(widths)
    return Batch(images, widths, torch.zeros(n, 1, dtype=torch.long),
                 torch.zeros(n, dtype=torch.long), [str(i) for i in range(n)], [""] * n)


def undo_by_target(shuffled: torch.Tensor, bounds_px: torch.Tensor, target: torch.Tensor
                   ) -> torch.Tensor:
    """Independent undo: cut the shuffled line into its pieces and put piece j back at slot
    target[j] (its original position)."""
    out = shuffled.clone()
    sizes = bounds_px.diff().tolist()
    starts = list(itertools.accumulate((sizes[t] for t in target.tolist()), initial=0))
    for j, orig in enumerate(target.tolist()):
        piece = shuffled[..., starts[j]:starts[j] + sizes[orig]]
        out[..., int(bounds_px[orig]):int(bounds_px[orig + 1])] = piece
    return out


def test_strips_are_whole_frames_inside_the_width():
    widths = torch.tensor([61, 96, 10, 37, 45, 16])
    for seed in range(20):
        torch.manual_seed(seed)
        bounds = ops.strip_bounds(widths // STRIDE, 4)
        sizes = bounds.diff()
        assert (bounds[:, -1] == torch.where(widths >= 16, widths // STRIDE, 0)).all()
        long = widths >= 16
        assert (sizes[long] >= 1).all() and (sizes[long].amax(1) - sizes[long].amin(1) <= 1).all()
        assert (bounds[~long] == 0).all()  # too short: no strips, nothing moves
    # the spare frames go to random strips, so a strip's size never gives its position away
    big = torch.stack([ops.strip_bounds(torch.tensor([13]), 4).diff()[0] for _ in range(200)])
    assert ((big == 4).float().mean(0) > 0.1).all()


def test_permute_then_unpermute_restores_exactly_and_padding_stays():
    images, widths = padded_batch()
    for seed in range(5):
        torch.manual_seed(seed)
        px = ops.strip_bounds(widths // STRIDE, 4) * STRIDE
        perm = torch.rand(len(widths), 4).argsort(1)
        shuffled = ops.permute_strips(images, px, perm)
        assert torch.equal(ops.unpermute_strips(shuffled, px, perm), images)
        new = ops.permuted_bounds(px, perm)
        for i, w in enumerate(widths.tolist()):
            assert torch.equal(shuffled[i, ..., px[i, -1]:], images[i, ..., px[i, -1]:])
            assert (shuffled[i, ..., w:] == 1).all()  # padding never moves into the line
            for j in range(4 if w >= 16 else 0):  # every strip lands whole where perm says
                src = images[i, ..., px[i, perm[i, j]]:px[i, perm[i, j] + 1]]
                assert torch.equal(shuffled[i, ..., new[i, j]:new[i, j + 1]], src)


@pytest.mark.parametrize("gap", [0, 3])
def test_jigsaw_label_undoes_the_shuffle(gap):
    images, widths = padded_batch()
    enc = build_encoder(EncoderConfig("small", 16, lstm_hidden=16))
    jig = Jigsaw(JigsawConfig(gap=gap), enc)
    label = torch.tensor([0, 5, 3, 11, 7])
    torch.manual_seed(1)
    shuffled, bounds = jig.shuffle(images, widths, enc.wstride, jig.perms[label])
    torch.manual_seed(1)  # the same strip sizes, unshuffled
    plain, _ = jig.shuffle(images, widths, enc.wstride, torch.arange(4).expand(5, 4))
    for i in range(5):
        back = undo_by_target(shuffled[i], bounds[i] * enc.wstride, jig.perms[label[i]])
        assert torch.equal(back, plain[i])
    if gap == 0:
        assert torch.equal(plain, images)
        assert not torch.equal(shuffled[1], images[1])
    assert torch.equal(shuffled[2], plain[2])  # the too-short line is left alone


def test_sorting_targets_are_original_positions():
    images, widths = padded_batch()
    enc = build_encoder(EncoderConfig("small", 16, lstm_hidden=16))
    sort = Sorting(SortingConfig(strips=3), enc)
    perm = torch.tensor([[2, 0, 1], [1, 2, 0], [0, 1, 2], [2, 1, 0], [0, 2, 1]])
    shuffled, bounds = sort.shuffle(images, widths, enc.wstride, perm)
    for i in range(5):
        assert torch.equal(undo_by_target(shuffled[i], bounds[i] * enc.wstride, perm[i]),
                           images[i])


def test_gap_whitens_the_same_columns_of_every_strip():
    images, widths = padded_batch()
    torch.manual_seed(0)
    px = ops.strip_bounds(widths // STRIDE, 4) * STRIDE
    out = ops.whiten_strip_edges(images, px, widths, 3)
    white = (out != images).any(-2)[:, 0]  # columns painted (the random ink is never 1)
    for i, w in enumerate(widths.tolist()):
        if w < 16:
            assert not white[i].any()
            continue
        for k in range(4):
            a, b = int(px[i, k]), int(px[i, k + 1])
            assert white[i, a:a + 2].all() and white[i, b - 1] and not white[i, a + 2:b - 1].any()
        assert white[i, px[i, -1]:w].all() and not white[i, w:].any()


def test_strip_features_ignore_padding():
    """In eval mode a line gets the same strip features alone or padded in a batch (widths in
    multiples of 4 frames, so the strip sizes do not depend on the random spare frames)."""
    torch.manual_seed(0)
    widths = torch.tensor([64, 96, 10, 48])
    images = torch.ones(4, 1, 16, 96)
    for i, w in enumerate(widths.tolist()):
        images[i, ..., :w] = torch.rand(1, 16, w)
    enc = build_encoder(EncoderConfig("small", 16, lstm_hidden=16)).eval()
    sort = Sorting(SortingConfig(), enc).eval()
    perm = torch.tensor([[3, 1, 0, 2]]).expand(4, 4)
    together, keep = sort.strip_features(enc, as_batch(images, widths), perm)
    assert keep.tolist() == [True, True, False, True]
    for i in (0, 3):
        w = int(widths[i])
        one = as_batch(images[i:i + 1, ..., :w], widths[i:i + 1])
        alone, _ = sort.strip_features(enc, one, perm[:1])
        assert torch.allclose(alone[0], together[i], atol=1e-5)


def test_short_lines_are_skipped_and_counted(lines):
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig("small", 32, lstm_hidden=16))
    sort = Sorting(SortingConfig(), enc)
    batch = to_batch([lines[0], lines[1], lines[2][:, :12], lines[3]])
    loss, metrics = sort(enc, batch)
    assert float(metrics["short"]) == 25.0 and torch.isfinite(loss)
    only_short = to_batch([lines[0][:, :12], lines[1][:, :10]])
    loss, metrics = sort(enc, only_short)
    assert float(loss.detach()) == 0.0 and float(metrics["short"]) == 100.0
    loss.backward()  # nothing to learn from, but the step must not fail


def brute_force_best_distance(n: int, k: int) -> int:
    every = np.array(list(itertools.permutations(range(n))))
    dist = (every[:, None] != every[None]).sum(-1)
    pairs = list(itertools.combinations(range(k), 2))
    best = 0
    for subset in itertools.combinations(range(len(every)), k):
        idx = np.array(subset)
        best = max(best, min(int(dist[idx[a], idx[b]]) for a, b in pairs))
    return best


@pytest.mark.parametrize(("n", "k"), [(3, 2), (3, 3), (3, 4), (3, 6), (4, 3), (4, 4), (4, 5)])
def test_permutation_set_is_as_far_apart_as_possible_for_small_n(n, k):
    perms = maximal_hamming_permutations(n, k, seed=0)
    assert min_hamming_distance(perms) == brute_force_best_distance(n, k)


@pytest.mark.parametrize(("n", "k", "expected"),
                         [(4, 4, 4), (4, 12, 3), (4, 24, 2), (5, 5, 5), (5, 20, 4), (6, 30, 4)])
def test_permutation_set_distance(n, k, expected):
    perms = maximal_hamming_permutations(n, k, seed=0)
    assert perms.shape == (k, n)
    assert len({tuple(p) for p in perms.tolist()}) == k  # distinct
    assert (perms.sort(1).values == torch.arange(n)).all()  # each row is a permutation
    table = (perms[:, None] != perms[None]).sum(-1) + (n + 1) * torch.eye(k, dtype=torch.long)
    assert min_hamming_distance(perms) == int(table.min()) == expected
    assert expected >= distance_guarantee(n, k)


@pytest.mark.parametrize(("n", "k"), [(4, 7), (5, 30), (6, 50)])
def test_every_pick_is_a_greedy_max_min_step(n, k):
    """Each permutation added is one of the farthest (by minimum distance) from those before it;
    that is what guarantees distance_guarantee(n, k)."""
    every = torch.tensor(list(itertools.permutations(range(n))))
    perms = maximal_hamming_permutations(n, k, seed=3)
    for i in range(1, k):
        nearest = (every[:, None] != perms[None, :i]).sum(-1).min(1).values
        assert int((perms[i] != perms[:i]).sum(-1).min()) == int(nearest.max())
    assert min_hamming_distance(perms) >= distance_guarantee(n, k)


def test_distance_guarantee_values():
    # n=4: balls of radius 1, 2 and 3 hold 1, 7 and 15 permutations of the 24
    assert [distance_guarantee(4, k) for k in (2, 3, 4, 5, 24)] == [4, 3, 3, 2, 2]
    # n=9 (Noroozi and Favaro's 9 tiles): balls of radius 4 hold 1,339 of 362,880, so 100
    # permutations are sure to differ pairwise in >= 5 places; radius 5 holds 6,883: not 6
    assert distance_guarantee(9, 100) == 5


def test_permutation_set_is_seeded_and_kept_in_checkpoints():
    a = maximal_hamming_permutations(5, 10, seed=7)
    assert torch.equal(a, maximal_hamming_permutations(5, 10, seed=7))
    enc = build_encoder(EncoderConfig("small", 16, lstm_hidden=16))
    jig = Jigsaw(JigsawConfig(strips=5, permutations=10, seed=7), enc)
    assert torch.equal(jig.state_dict()["perms"], a)
    assert jig.min_distance == min_hamming_distance(a) >= distance_guarantee(5, 10)


def test_config_errors_name_the_option_and_the_limit():
    with pytest.raises(ValueError, match=r"pretext\.jigsaw\.permutations=30.*2\.\.24"):
        JigsawConfig(strips=4, permutations=30)
    with pytest.raises(ValueError, match=r"pretext\.sorting\.strips=1"):
        SortingConfig(strips=1)
    with pytest.raises(ValueError, match=r"pretext\.jigsaw\.gap"):
        JigsawConfig(gap=-1)
    with pytest.raises(ValueError, match=r"pretext\.jigsaw\.strips=12"):
        JigsawConfig(strips=12, permutations=10)
