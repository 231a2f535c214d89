"""The pretexts of issue 18 under DDP: two gloo processes (as `torchrun --nproc_per_node=2`)
train each of them two steps through the real `fit`, with tiny heads.

What must hold: no rank waits forever (a collective on one rank only, or a parameter without
gradient that DDP was not told about); the weights, teachers, queues and DINO's center stay the
same on both ranks; MoCo's and SwAV's queues, filled from the keys of every rank, hold the
global batch's rows (2 ranks x 4 lines x instances per line, per step)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_ddp import CFG, ENCODER, WORLD, _batch, _OneBatch, _shard

from htr_ssl.pretext.model import build_pretext_model
from htr_ssl.pretext.model import loss_fn as pretext_loss
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import DistInfo
from htr_ssl.train.loop import fit
from htr_ssl.train.trainer_config import TrainerConfig

TINY = {
    "chaco": {"width": 16, "jitter": 2, "crops": 2, "hidden": 16, "proj_dim": 8},
    "cmtco": {"hidden": 16, "proj_dim": 8, "windows": 3, "strip": 8, "step": 8},
    "moco": {"hidden": 16, "proj_dim": 8, "windows": 3, "queue": 64},
    "cpc": {"steps": 3, "negatives": 4, "context": 16, "dim": 8},
    "inpaint": {"span": 2, "hidden": 16, "distractors": 4},
    "context": {"width": 16, "gap": 4, "jitter": 2, "pairs": 2, "hidden": 16},
    "dino": {"hidden": 16, "bottleneck": 8, "out_dim": 16, "local_crops": 1},
    "swav": {"hidden": 16, "dim": 8, "prototypes": 4, "local_crops": 1, "queue": 16,
             "queue_start": 0},  # full after step 1 (2 ranks x 4 lines x 2 views): step 2 uses it
    "persec": {"span": 2, "distractors": 4, "window": 3, "hidden": 16, "dim": 8},
}
STEPS = 2
TWO_STEPS = TrainerConfig(**{**CFG.__dict__, "max_steps": STEPS})


def _train(name: str, out: Path, rank: int) -> None:
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: pretext_config(name, TINY[name])})
    fit(model, pretext_loss, _OneBatch(_shard(_batch(), rank)), TWO_STEPS, out / name / str(rank),
        dist_info=DistInfo(rank, WORLD, rank))
    torch.save(model.state_dict(), out / name / f"state{rank}.pt")


def _rank(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        for name in TINY:
            _train(name, Path(out), rank)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp_pretexts")
    mp.spawn(_rank, args=(str(root / "store"), str(root)), nprocs=WORLD, join=True)
    return root


@pytest.mark.parametrize("name", sorted(TINY))
def test_two_processes_train_and_agree(runs, name):
    assert checkpoint.load(runs / name / "0" / "last.pt")["loop"]["step"] == STEPS
    a = torch.load(runs / name / "state0.pt")
    b = torch.load(runs / name / "state1.pt")
    for key, value in a.items():
        if "running_" in key or "num_batches" in key:  # BatchNorm statistics are per rank
            continue
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)


def test_queues_hold_the_global_batch(runs):
    moco = torch.load(runs / "moco" / "state0.pt")
    assert int(moco["pretexts.moco.queue.count"]) == STEPS * WORLD * 4 * 3  # lines x windows
    swav = torch.load(runs / "swav" / "state0.pt")
    assert int(swav["pretexts.swav.queue.count"]) == WORLD * 4 * 2  # step 1 filled it: full
