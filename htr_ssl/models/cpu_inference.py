"""The encoder's CNN for reading on the CPU: the same function as the blocks of `encoders.py`
in eval mode, computed in fewer passes over memory.

On a CPU whose convolutions are fast (AMX bf16), the plain eval path spends as much time on
element-wise passes as on the convolutions. This path (used by `Encoder` without gradients on
the CPU, unless `encoder.set_fused(False)`) does the same work with:

- each conv with its BatchNorm folded in, the weights cast and reordered once to oneDNN's
  blocked layout (kept until a parameter or BN statistic changes), and the ReLU (with a
  residual block's sum) as a oneDNN post-op: one pass instead of three;
- the batch in chunks of a few lines, so a map is still in cache when the next layer reads it
  and stays under glibc's mmap threshold (a 50 MB map is page-faulted anew at every step);
- max-pools as pairwise maximums over (B, H, W, C) views of the bits as integers (post-ReLU
  floats order as their bits do), and the column max over height as one integer reduction,
  with a last (k, 1) pool folded into it;
- the padding zeroed on its columns only (after every ReLU, as in the plain blocks).

Max is exact and the folding only reorders float sums, so the frames equal the plain path's
up to rounding (bf16 rounding under bf16 autocast).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from htr_ssl.models.blocks import BasicBlock, ConvBNReLU, MaxPool
from htr_ssl.models.ops import max_pool_nhwc, zero_columns_

if TYPE_CHECKING:
    from htr_ssl.models.encoders import Encoder

# Lines per chunk: the largest map of a chunk of 64 x 768 lines (the first conv's, 32 channels)
# is then about 12 MB in bf16. Measured on the `small` encoder: 4 lines per chunk run the CNN
# 1.5-2x faster than 16.
PIXELS_PER_CHUNK = 4 * 64 * 768

Lengths = list[int]
Step = Callable[[torch.Tensor, Lengths], tuple[torch.Tensor, Lengths]]


def supported(encoder: Encoder, images: torch.Tensor) -> bool:
    """Whether this path applies: CPU, no gradients, eval mode, oneDNN, fp32 or bf16, not
    while torch.compile traces (it gets the plain blocks, which it can fuse itself)."""
    if not (encoder.fused and images.device.type == "cpu"
            and not torch.is_grad_enabled() and not encoder.training
            and torch.backends.mkldnn.is_available()
            and not torch.compiler.is_compiling()):
        return False
    dtype = compute_dtype(images)
    return dtype == torch.float32 or (dtype == torch.bfloat16
                                      and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def compute_dtype(images: torch.Tensor) -> torch.dtype:
    """The dtype the convolutions run in: autocast's when it is on, else the images'."""
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return images.dtype


class _Conv:
    """A conv with its BatchNorm folded in, oneDNN-packed for one dtype on first use."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, dtype: torch.dtype) -> None:
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight = conv.weight * scale[:, None, None, None]
        self.weight = weight.to(dtype).contiguous(memory_format=torch.channels_last)
        self.bias = (bn.bias - bn.running_mean * scale).to(dtype)
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.packed: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, relu: bool = True,
                 residual: torch.Tensor | None = None) -> torch.Tensor:
        """conv(x) [+ residual] [then ReLU], in one oneDNN primitive."""
        if self.packed is None:  # the layout depends on the input shape; any shape runs with it
            self.packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, [1, 1], 1, list(x.shape))
        unary = "relu" if relu else "none"
        if residual is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.packed, self.bias, self.padding, self.stride, [1, 1], 1, unary, [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual, self.packed, self.bias, self.padding, self.stride, [1, 1], 1, "add",
            None, unary, [], "")


def _as_int(x: torch.Tensor) -> torch.Tensor:
    """The bits of a map >= 0 (post-ReLU) as integers, which order as the floats do: integer
    maximums are a third faster than bf16 ones (no conversion to fp32 and back)."""
    return x.view({torch.bfloat16: torch.int16, torch.float32: torch.int32}.get(x.dtype, x.dtype))


def max_pool(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Max-pool with kernel = stride over a channels-last map >= 0, as pairwise maximums of
    strided views (no indices, no padding logic); the map's size must divide by the kernel."""
    return max_pool_nhwc(_as_int(x), kh, kw).view(x.dtype)


def column_max(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) channels-last map >= 0 -> (B, W, C) frames: the max over height, one
    reduction over the outer H axis of the (B, H, W, C) view (2.4x faster than pairwise
    maximums at 8 rows; for 2-wide pools the pairwise form stays faster)."""
    return _as_int(x).permute(0, 2, 3, 1).amax(1).view(x.dtype)


def _ceil_div(lengths: Lengths, k: int) -> Lengths:
    return [-(-n // k) for n in lengths]


def _conv_bn_relu(layer: ConvBNReLU, dtype: torch.dtype) -> Step:
    conv = _Conv(layer.conv, layer.bn, dtype)

    def step(x: torch.Tensor, lengths: Lengths) -> tuple[torch.Tensor, Lengths]:
        lengths = _ceil_div(lengths, layer.wstride)
        return zero_columns_(conv(x), lengths), lengths

    return step


def _basic_block(layer: BasicBlock, dtype: torch.dtype) -> Step:
    conv1 = _Conv(layer.conv1, layer.bn1, dtype)
    conv2 = _Conv(layer.conv2, layer.bn2, dtype)
    shortcut = _Conv(*layer.shortcut, dtype) if isinstance(layer.shortcut, nn.Sequential) else None

    def step(x: torch.Tensor, lengths: Lengths) -> tuple[torch.Tensor, Lengths]:
        y = zero_columns_(conv1(x), lengths)
        residual = x if shortcut is None else shortcut(x, relu=False)
        return zero_columns_(conv2(y, residual=residual), lengths), lengths

    return step


def _max_pool(layer: MaxPool) -> Step:
    kh, kw = layer.kernel

    def step(x: torch.Tensor, lengths: Lengths) -> tuple[torch.Tensor, Lengths]:
        if x.shape[2] % kh or x.shape[3] % kw:  # not with the encoder's shapes; kept exact
            x = nn.functional.max_pool2d(x, layer.kernel, layer.kernel, ceil_mode=True)
        else:
            x = max_pool(x, kh, kw)
        return x, _ceil_div(lengths, kw)

    return step


class FusedCNN:
    """The encoder's CNN as a list of fused steps for one dtype; `frames` runs it."""

    def __init__(self, encoder: Encoder, dtype: torch.dtype) -> None:
        layers = list(encoder.cnn)
        # a last (k, 1) pool changes nothing that the max over height does not do anyway
        self.tail_pool = bool(layers) and isinstance(layers[-1], MaxPool) and (
            layers[-1].kernel[1] == 1)
        steps: list[Step] = []
        for layer in layers[:-1] if self.tail_pool else layers:
            if isinstance(layer, ConvBNReLU):
                steps.append(_conv_bn_relu(layer, dtype))
            elif isinstance(layer, BasicBlock):
                steps.append(_basic_block(layer, dtype))
            elif isinstance(layer, MaxPool):
                steps.append(_max_pool(layer))
            else:
                raise TypeError(f"no fused form for {type(layer).__name__}")
        self.steps, self.dtype = steps, dtype

    def maps(self, x: torch.Tensor, lengths: Lengths) -> torch.Tensor:
        """The CNN map of padded, masked, inverted images (the tail pool excluded)."""
        for step in self.steps:
            x, lengths = step(x, lengths)
        return x

    def frames(self, x: torch.Tensor, lengths: Lengths) -> torch.Tensor:
        """Frames (B, T, C) of padded, masked, inverted images, a chunk of lines at a time."""
        chunk = max(1, PIXELS_PER_CHUNK // (x.shape[-2] * x.shape[-1]))
        out = [column_max(self.maps(x[i:i + chunk], lengths[i:i + chunk]))
               for i in range(0, x.shape[0], chunk)]
        return out[0] if len(out) == 1 else torch.cat(out)


def _state_key(encoder: Encoder, dtype: torch.dtype) -> tuple:
    """Changes whenever a parameter or BN statistic is replaced or updated in place."""
    tensors = [*encoder.cnn.parameters(), *encoder.cnn.buffers()]
    return (dtype, *((t.data_ptr(), t._version) for t in tensors))


# Encoder -> {dtype: (state key, FusedCNN)}; kept off the module, so copying or pickling an
# encoder never meets the packed weights.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fused_cnn(encoder: Encoder, dtype: torch.dtype) -> FusedCNN:
    """The encoder's FusedCNN for `dtype`, rebuilt when its weights have changed."""
    key = _state_key(encoder, dtype)
    cache: dict = _CACHE.setdefault(encoder, {})
    if cache.get(dtype, (None,))[0] != key:
        with torch.no_grad():
            cache[dtype] = (key, FusedCNN(encoder, dtype))
    return cache[dtype][1]


def prepare(images: torch.Tensor, widths: torch.Tensor, wstride: int, dtype: torch.dtype
            ) -> tuple[torch.Tensor, Lengths]:
    """Inverted images (ink = 1) in `dtype`, padded to whole strides, zero beyond each width."""
    b, _, h, w = images.shape
    x = images.new_zeros((b, 1, h, w + (-w % wstride)), dtype=dtype)
    x[..., :w] = 1.0 - images
    lengths = widths.long().clamp(1, w).tolist()
    return zero_columns_(x, lengths), lengths
