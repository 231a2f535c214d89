"""Speed options that must not change results: loader workers, compile, the padding measure,
fused AdamW, the allocator setting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from htr_ssl.data.pipeline import DataConfig, init_worker, make_loader
from htr_ssl.data.sample import Batch, Sample
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.train.distributed import needs_find_unused
from htr_ssl.train.speed import adamw, compile_model, pad_ratio, reuse_freed_memory
from htr_ssl.train.trainer_config import TrainerConfig


@pytest.fixture()
def samples(tmp_path) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 20 + 7 * i), dtype=np.uint8)).save(path)
        out.append(Sample(str(i), path, ""))
    return out


def _epochs(loader, n: int = 2) -> list[tuple[list[str], torch.Tensor]]:
    out = []
    for epoch in range(n):
        loader.sampler.set_epoch(epoch)
        out += [(b.ids, b.images) for b in loader]
    return out


def test_workers_give_the_same_augmented_batches(samples):
    """Each item's augmentation seed comes from the sampler, so 2 persistent workers give
    exactly the batches of the main process, epoch after epoch (exact resumption relies on it)."""
    cfg = DataConfig(height=16, batch_size=4, augment=AugmentConfig("htr", 0.9))
    main = make_loader(samples, None, cfg, train=True, seed=3)
    cfg.num_workers = 2
    workers = make_loader(samples, None, cfg, train=True, seed=3)
    assert workers.persistent_workers and workers.worker_init_fn is init_worker
    for (ids_a, img_a), (ids_b, img_b) in zip(_epochs(main), _epochs(workers), strict=True):
        assert ids_a == ids_b
        torch.testing.assert_close(img_a, img_b, rtol=0, atol=0)


class _Threads(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> tuple[int, int]:
        return cv2.getNumThreads(), torch.get_num_threads()


def test_workers_run_single_threaded():
    loader = DataLoader(_Threads(), num_workers=1, worker_init_fn=init_worker,
                        collate_fn=lambda items: items[0])
    assert next(iter(loader)) == (1, 1)  # cv2.setNumThreads(0) -> 1 thread (sequential)


def test_pad_ratio_counts_padded_pixels():
    batch = Batch(torch.ones(2, 1, 8, 64), torch.tensor([64, 32]), torch.zeros(2, 1),
                  torch.ones(2), ["a", "b"], ["", ""])
    assert pad_ratio(batch) == pytest.approx(0.25)
    assert pad_ratio(object()) is None


class _WithEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean((2, 3)))


def test_compile_keeps_names_and_outputs():
    """Checkpoints of a compiled run load without compile: parameter names are unchanged."""
    torch.manual_seed(0)
    model = _WithEncoder().eval()
    x = torch.rand(2, 1, 8, 8)
    keys, before = list(model.state_dict()), model(x)
    compile_model(model, backend="eager")
    assert list(model.state_dict()) == keys
    assert model.encoder._compiled_call_impl is not None
    torch.testing.assert_close(model(x), before)


def test_find_unused_parameters_option():
    pretraining = nn.Module()
    pretraining.pretexts = nn.ModuleDict()
    assert needs_find_unused(pretraining, "auto")
    assert not needs_find_unused(nn.Linear(1, 1), "auto")
    assert needs_find_unused(nn.Linear(1, 1), True)
    with pytest.raises(ValueError, match=r"trainer\.find_unused_parameters"):
        TrainerConfig(find_unused_parameters="sometimes")


def test_fused_adamw_matches_adamw():
    """The CPU's fused AdamW takes the same steps as the per-op one, to float rounding."""
    torch.manual_seed(0)
    a, b = nn.Linear(8, 4), nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    fused = adamw(a.parameters(), torch.device("cpu"), lr=0.01)
    plain = torch.optim.AdamW(b.parameters(), lr=0.01)
    assert fused.defaults["fused"]
    for _ in range(3):
        x = torch.randn(5, 8)
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_reuse_freed_memory_keeps_results():
    """The allocator setting applies on glibc (a no-op elsewhere) and changes no result."""
    x = torch.randn(3, 2000, 2000)  # above glibc's mmap threshold
    before = (x @ x).sum()
    applied = reuse_freed_memory()
    assert isinstance(applied, bool)
    torch.testing.assert_close((x @ x).sum(), before)
    assert TrainerConfig().reuse_memory
