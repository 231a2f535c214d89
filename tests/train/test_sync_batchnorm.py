"""CPUSyncBatchNorm: two gloo processes, each with half of a batch, give the output, input
gradients, parameter gradients and running statistics of one BatchNorm on the whole batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from htr_ssl.train.sync_batchnorm import CPUSyncBatchNorm, convert_cpu_sync_batchnorm

WORLD = 2
# (B, C, H, W) maps, (B, C) vectors, and bf16 maps (as under autocast) with fp32 parameters
SHAPES = {"2d": (6, 4, 3, 5), "1d": (6, 4), "2d-bf16": (6, 4, 3, 5)}


def _case(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A BatchNorm with non-trivial affine parameters, an input, and a weight for the loss
    (so each sample's gradient differs)."""
    torch.manual_seed(0)
    shape = SHAPES[kind]
    bn = (nn.BatchNorm1d if kind == "1d" else nn.BatchNorm2d)(shape[1], momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    dtype = torch.bfloat16 if kind.endswith("bf16") else torch.float32
    return bn, (3 * torch.randn(shape) + 1).to(dtype), torch.randn(shape).to(dtype)


def _step(bn: nn.Module, x: torch.Tensor, w: torch.Tensor, part: slice) -> dict:
    """One training forward and backward on rows `part`; everything worth comparing."""
    x = x[part].clone().requires_grad_(True)
    y = bn(x)
    (y * w[part]).sum().backward()
    return {"y": y.detach(), "dx": x.grad, "dweight": bn.weight.grad, "dbias": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var,
            "tracked": bn.num_batches_tracked}


def _rank(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        results = {}
        for kind in SHAPES:
            bn, x, w = _case(kind)
            bn = convert_cpu_sync_batchnorm(nn.Sequential(bn))[0]
            assert isinstance(bn, CPUSyncBatchNorm)
            half = x.shape[0] // WORLD
            results[kind] = _step(bn, x, w, slice(rank * half, (rank + 1) * half))
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("syncbn")
    mp.spawn(_rank, args=(str(root / "store"), str(root)), nprocs=WORLD)
    return [torch.load(root / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("kind", list(SHAPES))
def test_two_processes_equal_one_batchnorm_on_the_whole_batch(ranks, kind):
    bn, x, w = _case(kind)
    one = _step(bn, x, w, slice(None))
    got = [r[kind] for r in ranks]
    tol = {"rtol": 2e-2, "atol": 4e-2} if kind.endswith("bf16") else {}  # bf16: 8 bits
    torch.testing.assert_close(torch.cat([g["y"] for g in got]), one["y"], **tol)
    torch.testing.assert_close(torch.cat([g["dx"] for g in got]), one["dx"], **tol)
    # DDP averages parameter gradients over ranks; the sum over ranks is the whole batch's
    for key in ("dweight", "dbias"):
        torch.testing.assert_close(got[0][key] + got[1][key], one[key], **tol)
    for g in got:  # every rank keeps the same, global running statistics
        torch.testing.assert_close(g["running_mean"], one["running_mean"], **tol)
        torch.testing.assert_close(g["running_var"], one["running_var"], **tol)
        assert int(g["tracked"]) == int(one["tracked"]) == 1


def test_outside_torchrun_it_is_plain_batchnorm():
    bn, x, w = _case("2d")
    synced = convert_cpu_sync_batchnorm(nn.Sequential(_case("2d")[0]))[0]
    assert isinstance(synced, CPUSyncBatchNorm)
    a, b = _step(bn, x, w, slice(None)), _step(synced, x, w, slice(None))
    for key in a:
        torch.testing.assert_close(b[key], a[key])
    synced.eval()
    torch.testing.assert_close(synced(x), bn.eval()(x))
