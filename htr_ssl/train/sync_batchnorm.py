"""BatchNorm over the global batch on the CPU (gloo), where PyTorch's SyncBatchNorm refuses to run.

The scheme of PyTorch's GPU SyncBatchNorm, on the CPU's fused BatchNorm kernels. Forward: each
process takes its per-channel mean and variance, the global ones are combined from them and the
counts (two small all-reduces), and the map is normalized with them in one pass. Backward: the
per-channel sums of dy and dy * x_hat are all-reduced, so each rank's input gradient holds what
every rank's loss owes to its inputs; the parameter gradients stay local sums, which DDP
averages. Output, gradients and running statistics are those of one process running
BatchNorm on the concatenated batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _all_reduce(x: torch.Tensor, group: object) -> torch.Tensor:
    x = x.contiguous()
    dist.all_reduce(x, group=group)
    return x


class _SyncBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # type: ignore[override]
                bn: CPUSyncBatchNorm) -> torch.Tensor:
        c, group = x.shape[1], bn.process_group
        n_r = x.numel() / max(c, 1)
        # this rank's mean and biased variance in fp32 (the float buffers set the precision;
        # momentum 0 leaves them untouched), then the global ones by the parallel formula
        mean_r, var_r = torch.batch_norm_update_stats(
            x, torch.zeros(c, device=x.device), torch.ones(c, device=x.device), 0.0)
        sums = _all_reduce(torch.cat([mean_r * n_r, mean_r.new_full((1,), n_r)]), group)
        n = float(sums[-1])
        mean = sums[:-1] / n
        var = _all_reduce(n_r * (var_r + (mean_r - mean) ** 2), group) / n
        if bn.track_running_stats:
            bn._update_running_stats(mean, var, n)
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, bn.eps)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.n, ctx.eps, ctx.group = n, bn.eps, group
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> tuple:  # type: ignore[override]
        x, weight, mean, var = ctx.saved_tensors
        invstd = torch.rsqrt(var + ctx.eps)
        # eval-mode backward: dx = dy * w * invstd, dw = sum(dy * x_hat), db = sum(dy), local
        dx, dw, db = torch.ops.aten.native_batch_norm_backward(
            dy, x, weight, mean, var, mean, invstd, False, ctx.eps, [True, True, True])
        sums = _all_reduce(torch.cat([db, dw]), ctx.group)
        sum_dy, sum_dy_xhat = sums.chunk(2)
        # the terms training mode adds, with global sums: - w * invstd * (sum_dy + x_hat *
        # sum_dy_xhat) / N, an affine function of x per channel: dx += a * x + b
        a = -weight * invstd * invstd * sum_dy_xhat / ctx.n
        b = -weight * invstd * sum_dy / ctx.n - a * mean
        shape = [1, -1] + [1] * (x.dim() - 2)
        dx = torch.addcmul(dx + b.view(shape).to(dx.dtype), x, a.view(shape).to(dx.dtype))
        return dx, dw, db, None


class CPUSyncBatchNorm(_BatchNorm):
    """A BatchNorm of any input rank (B, C, ...) that normalizes with the statistics of the
    batch of all ranks while training under torch.distributed; otherwise plain BatchNorm.
    `process_group`: where the statistics are summed (None: the default group)."""

    process_group: object = None

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input of shape (B, C, ...), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        weight = self.weight if self.affine else torch.ones(c, device=x.device)
        bias = self.bias if self.affine else torch.zeros(c, device=x.device)
        with torch.autocast(x.device.type, enabled=False):  # bf16 maps, fp32 statistics
            return _SyncBatchNorm.apply(x, weight, bias, self)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        self.num_batches_tracked += 1
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(var * n / max(n - 1, 1), momentum)  # unbiased, as BN keeps


def convert_cpu_sync_batchnorm(module: nn.Module, process_group: object = None) -> nn.Module:
    """Every BatchNorm below `module` -> CPUSyncBatchNorm sharing its parameters and buffers
    (the optimizer, checkpoints and state-dict keys are unaffected).

    Under torch.distributed the layers get a process group of their own (every rank must
    call this at the same point, as `fit` does): in the default group their blocking
    all-reduces during backward would queue behind DDP's asynchronous gradient all-reduces
    and serialize the two."""
    if process_group is None and dist.is_available() and dist.is_initialized():
        process_group = dist.new_group(backend="gloo")
    synced = (CPUSyncBatchNorm, nn.SyncBatchNorm)
    if isinstance(module, _BatchNorm) and not isinstance(module, synced):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new._parameters, new._buffers = module._parameters, module._buffers
        new.process_group = process_group
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module._modules[name] = convert_cpu_sync_batchnorm(child, process_group)
    return module
