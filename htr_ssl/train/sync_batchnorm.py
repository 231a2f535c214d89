"""BatchNorm over the global batch on the CPU (gloo), where PyTorch's SyncBatchNorm refuses to run.

Each process sums its per-channel values, then squared deviations from the global mean, and
all-reduces the sums with their counts. Forward output, gradients (the all-reduce's backward
is an all-reduce of the gradients, so each rank receives what every rank's loss owes to its
inputs) and running statistics are those of one process running BatchNorm on the
concatenated batch. Two small collectives per layer and step: cheap next to the convolutions.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward: the gradient summed over ranks (every rank used the sum)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(_BatchNorm):
    """A BatchNorm of any input rank (B, C, ...) that normalizes with the statistics of the
    batch of all ranks while training under torch.distributed; otherwise plain BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input of shape (B, C, ...), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() / max(x.shape[1], 1)], device=x.device)
        sums = _AllReduceSum.apply(torch.cat([xf.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centered = xf - mean.view(shape)
        var = _AllReduceSum.apply((centered * centered).sum(dims)) / n  # biased, as BN uses
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(n.detach()))
        y = centered * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        self.num_batches_tracked += 1
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(var * n / max(n - 1, 1), momentum)  # unbiased, as BN keeps


def convert_cpu_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm below `module` -> CPUSyncBatchNorm sharing its parameters and buffers
    (the optimizer, checkpoints and state-dict keys are unaffected)."""
    synced = (CPUSyncBatchNorm, nn.SyncBatchNorm)
    if isinstance(module, _BatchNorm) and not isinstance(module, synced):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new._parameters, new._buffers = module._parameters, module._buffers
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module._modules[name] = convert_cpu_sync_batchnorm(child)
    return module
