from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.image import ImageReadError, resize_to_height
from htr_ssl.data.sample import Sample, TextImageDataset, collate
from htr_ssl.data.sampler import EpochSampler, sorted_windows
from htr_ssl.data.transforms import RECIPES, AugmentConfig, as_callable, build_augment


def _png(path: Path, w: int, h: int = 32, value: int = 0) -> Path:
    arr = np.full((h, w), 255, np.uint8)
    arr[h // 4: 3 * h // 4, 2: w - 2] = value
    Image.fromarray(arr).save(path)
    return path


def test_dataset_and_collate(tmp_path):
    a = Alphabet.from_texts(["hello world"])
    samples = [Sample("a", _png(tmp_path / "a.png", 100), "hello"),
               Sample("b", _png(tmp_path / "b.png", 40, h=16), "world wide"[:5])]
    ds = TextImageDataset(samples, a, height=64)
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (64, 200)
    batch = collate([ds[0], ds[1]], width_multiple=1)
    assert batch.images.shape == (2, 1, 64, 200)
    assert collate([ds[0], ds[1]]).images.shape == (2, 1, 64, 224)  # rounded up to 32
    assert batch.widths.tolist() == [200, 160]
    assert batch.target_lengths.tolist() == [5, 5]
    assert a.decode(batch.targets[1].tolist()) == "world"
    assert batch.images[1, 0, :, 160:].eq(1.0).all()  # white padding
    assert batch.images.min() == 0.0


def test_unreadable_image_is_skipped_not_fatal(tmp_path, caplog):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    samples = [Sample("ok", _png(tmp_path / "ok.png", 50), "a"),
               Sample("bad", tmp_path / "bad.png", "a"),
               Sample("gone", tmp_path / "missing.png", "a")]
    ds = TextImageDataset(samples, Alphabet(("a",)), height=32)
    batch = collate([ds[i] for i in range(3)])
    assert batch.ids == ["ok"] and batch.dropped == 2
    assert "bad.png" in caplog.text and "missing.png" in caplog.text
    with pytest.raises(ImageReadError, match=r"missing\.png"):
        TextImageDataset(samples, None, strict=True)[2]


def test_resize_keeps_aspect():
    img = np.zeros((40, 100), np.uint8)
    assert resize_to_height(img, 64).shape == (64, 160)
    assert resize_to_height(img, 20, max_width=30).shape == (20, 30)


def test_sampler_is_seeded_and_resumable():
    s = EpochSampler(10, seed=1)
    s.set_epoch(2)
    full = list(s)
    assert sorted(i for i, _ in full) == list(range(10))
    s.set_epoch(2, start=4)
    assert list(s) == full[4:]
    s.set_epoch(3)
    assert [i for i, _ in s] != [i for i, _ in full]
    ranks = [list(EpochSampler(10, 1, rank=r, world=3)) for r in range(3)]
    assert all(len(r) == 4 for r in ranks)
    assert {i for r in ranks for i, _ in r} == set(range(10))


@pytest.mark.parametrize("recipe", RECIPES)
def test_augment_recipes_keep_uint8_and_are_seeded(recipe):
    img = np.full((48, 160), 255, np.uint8)
    img[15:35, 10:150] = 30
    aug = as_callable(build_augment(AugmentConfig(recipe, p=1.0)))
    if recipe == "none":
        assert aug is None
        return
    a, b = aug(img, 7), aug(img, 7)
    assert a.dtype == np.uint8 and a.ndim == 2 and a.shape[0] > 0
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="unknown augmentation recipe"):
        build_augment(AugmentConfig("rainbow"))


def test_bucketing_groups_similar_widths_and_stays_a_permutation():
    rng = np.random.default_rng(0)
    widths = rng.uniform(1, 20, 200).tolist()
    s = EpochSampler(200, seed=3, widths=widths, batch_size=8, pool=10)
    order = [i for i, _ in s]
    assert sorted(order) == list(range(200))
    spread = np.mean([np.ptp([widths[i] for i in order[k:k + 8]]) for k in range(0, 200, 8)])
    plain = [i for i, _ in EpochSampler(200, seed=3)]
    plain_spread = np.mean([np.ptp([widths[i] for i in plain[k:k + 8]])
                            for k in range(0, 200, 8)])
    assert spread < plain_spread / 4
    s.set_epoch(1)
    assert [i for i, _ in s] != order
    assert [i for i, _ in EpochSampler(5, shuffle=False, widths=[3, 1, 2, 5, 4])] == \
        [1, 2, 0, 4, 3]


def test_sorted_windows_keep_input_windows_and_sort_within():
    widths = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 8.0]
    windows = sorted_windows(widths, batch_size=2, window=5)
    assert windows == [[[1, 3], [4, 2], [0]], [[6, 5]]]
    flat = [i for w in windows for b in w for i in b]
    assert sorted(flat) == list(range(7))
    with pytest.raises(ValueError, match="window"):
        sorted_windows(widths, batch_size=2, window=0)
