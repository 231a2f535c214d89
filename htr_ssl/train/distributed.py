"""torchrun / DDP set-up: one process per device, rank 0 logs, validates and checkpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from htr_ssl.train.sync_batchnorm import convert_cpu_sync_batchnorm


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_from_env() -> DistInfo:
    """Join the process group that `torchrun` describes in the environment (no-op otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    return DistInfo(rank, world, local_rank)


def all_agree(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True only if `flag` holds on every rank (used for skip and stop decisions)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's decision, sent to every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def sync_batchnorm(model: nn.Module, device: torch.device, enabled: bool) -> nn.Module:
    """Every BatchNorm normalizes with the statistics of the global batch when training on
    several processes (a per-process batch of a few lines gives noisy ones, and contrastive
    methods can cheat through per-rank statistics): SyncBatchNorm on GPUs, CPUSyncBatchNorm
    on the CPU (gloo), where PyTorch's own refuses to run. Both share the parameters and
    buffers of the layer they replace, so the optimizer and checkpoints are unaffected."""
    if not enabled:
        return model
    if device.type == "cpu":
        return convert_cpu_sync_batchnorm(model)
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def needs_find_unused(model: nn.Module, option: bool | str) -> bool:
    """DDP must be told when some trainable parameters get no gradient in a step, or it waits
    for them forever. `auto`: on for pretraining models (a pretext may skip parts of the
    encoder, e.g. `contextual: false` leaves the BiLSTM out, or a head in a degenerate batch),
    off for recognizers, whose every head is in every loss."""
    if option == "auto":
        return hasattr(model, "pretexts")
    return bool(option)


def wrap_ddp(module: nn.Module, device: torch.device, find_unused: bool
             ) -> DistributedDataParallel:
    """DDP over `module` on this process's device (gradients averaged across ranks)."""
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused)
