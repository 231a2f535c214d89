"""The encoders' building blocks: conv + BatchNorm + ReLU, residual blocks and max-pools that
keep each line's padding at zero (so a line's frames do not depend on its batch), with the
fused element-wise paths of models/ops.py. The encoders (encoders.py) and the CPU reading path
(cpu_inference.py) both build on them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.models.ops import max_pool_nhwc, relu_masked_, zero_columns_


def mask_columns(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the columns of a (B, C, H, W) map at or beyond each sample's valid width."""
    cols = torch.arange(x.shape[-1], device=x.device)
    keep = cols[None, :] < lengths[:, None].to(x.device)  # (B, W)
    return x * keep[:, None, None, :].to(x.dtype)


def _inference(x: torch.Tensor) -> bool:
    """Whether no gradient can flow (eval, no_grad / inference_mode) on the CPU: then the
    blocks fold BatchNorm into the conv and work in place. Both paths give the same map."""
    return x.device.type == "cpu" and not torch.is_grad_enabled()


def _zero_padding_(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """In-place `mask_columns` for inference: writes only the padded columns (with bucketed
    batches a sliver), where the mask multiplies the whole map."""
    width = x.shape[-1]
    for b, n in enumerate(lengths.tolist()):
        if n < width:
            x[b, :, :, n:] = 0
    return x


def _conv_bn(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """conv -> BatchNorm; in eval mode without gradients as one conv with the BN folded in."""
    if bn.training or not _inference(x):
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale[:, None, None, None]
    return F.conv2d(x, weight, bn.bias - bn.running_mean * scale, conv.stride, conv.padding)


def _relu_masked(x: torch.Tensor, lengths: torch.Tensor, fused: bool) -> torch.Tensor:
    """ReLU, then zero the padding columns: fused, in place, one pass each way (ops.py);
    else the plain ops (in place when no gradient can flow)."""
    if fused:
        return relu_masked_(x, lengths)
    if _inference(x):
        return _zero_padding_(x.relu_(), lengths)
    return mask_columns(F.relu(x), lengths)


# Building blocks. Each takes and returns (x, lengths) so the width mask follows the map through
# every layer that could leak padding into real columns. `fused` (set by Encoder.set_fused)
# picks the fused element-wise ops of ops.py or the plain ones; both compute the same.
# `relu=False` leaves a block's final ReLU (and mask) to the max-pool after it (Encoder._cnn).


class ConvBNReLU(nn.Module):
    """Conv -> BatchNorm -> ReLU, then re-zero the padding columns."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3,
                 stride: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.wstride = stride[1]
        self.fused = True

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, relu: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = ceil_div(lengths, self.wstride)
        x = _conv_bn(x, self.conv, self.bn)
        return (_relu_masked(x, lengths, self.fused) if relu else x), lengths


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + identity or 1x1 shortcut), padding-masked."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.fused = True

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, relu: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y = _relu_masked(_conv_bn(x, self.conv1, self.bn1), lengths, self.fused)
        y = _conv_bn(y, self.conv2, self.bn2)
        projected = isinstance(self.shortcut, nn.Sequential)
        y = y + (_conv_bn(x, *self.shortcut) if projected else x)
        return (_relu_masked(y, lengths, self.fused) if relu else y), lengths


class MaxPool(nn.Module):
    """Max-pool with kernel = stride; inputs are post-ReLU (>= 0) so masked zeros never win.

    `relu=True`: the block before left its ReLU and mask to this pool. ReLU commutes with max,
    so relu(pool(x with the padding zeroed)) is the same map with the same gradient (the pooled
    ReLU passes gradient only where the window's maximum is positive, hence at a real column,
    the first maximum in the window in both orders); the ReLU and its backward then run on the
    pooled map, a quarter of the size. The padding is zeroed in place without autograd: its
    gradient is zero either way, and the block's BatchNorm or sum does not keep its output."""

    def __init__(self, kh: int, kw: int) -> None:
        super().__init__()
        self.kernel = (kh, kw)
        self.wstride = kw

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, relu: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if relu:
            with torch.no_grad():
                zero_columns_(x, lengths)
        x, lengths = self._pool(x, lengths)
        return (F.relu(x) if relu else x), lengths

    def _pool(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kh, kw = self.kernel
        h, w = x.shape[-2:]
        if (_inference(x) and not h % kh and not w % kw
                and x.is_contiguous(memory_format=torch.channels_last)):
            # max_pool2d's CPU kernel also computes indices nobody uses here
            return max_pool_nhwc(x, kh, kw), ceil_div(lengths, self.wstride)
        x = F.max_pool2d(x, self.kernel, self.kernel, ceil_mode=True)
        return x, ceil_div(lengths, self.wstride)


def ceil_div(a: torch.Tensor, b: int) -> torch.Tensor:
    return torch.div(a + b - 1, b, rounding_mode="floor")


# The three CNN layouts, as flat lists of blocks. Vertical reduction is always 16, so any height
# that is a multiple of 16 works; the map is then collapsed by a max over its rows.
