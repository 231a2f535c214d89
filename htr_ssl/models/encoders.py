"""Text-line encoders: a CNN that turns an image into a row of frames, plus an optional BiLSTM.

Every encoder maps images (B, 1, H, W) and their true widths to frames (B, T, C) and frame
counts (B,). Three presets share one skeleton:

- ``small``:  a few conv blocks, horizontal stride 4, BiLSTM(128); about 1.4 M parameters, made to
  train on a laptop CPU.
- ``resnet``: the ResNet feature extractor of Baek et al. (2019) that SeqCLR (Aberdam et al. 2021)
  builds on (1-2-5-3 residual blocks, 512 channels), horizontal stride 4, 2 x BiLSTM(256).
- ``bp``:     the "HTR best practices" CNN (Retsinas et al. 2022): 7x7 conv 32 with stride (4, 2),
  residual blocks 2x64, 4x128, 4x256 with max-pools, column max-pool over height, 3 x BiLSTM(256);
  horizontal stride 8.

Padding is made neutral rather than merely small: the input is inverted (ink = 1 - pixel, so white
padding becomes 0) and after every conv the columns beyond each sample's true width are zeroed.
A line therefore gives the same frames (in eval mode) whether it is alone or padded in a batch,
which is what lets the pretexts and decoders trust the frames up to ``lengths``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.models import cpu_inference
from htr_ssl.models.bilstm import BiLSTM
from htr_ssl.models.blocks import (
    BasicBlock,
    ConvBNReLU,
    MaxPool,
    ceil_div,
    mask_columns,
)

PRESETS = ("small", "resnet", "bp")


@dataclass
class EncoderConfig:
    """What encoder to build. ``None`` for the LSTM sizes means "the preset's default"."""

    preset: str = "small"
    height: int = 64
    lstm_layers: int | None = None
    lstm_hidden: int | None = None
    dropout: float = 0.1


# Preset defaults: (lstm_layers, lstm_hidden).
_LSTM_DEFAULTS: dict[str, tuple[int, int]] = {
    "small": (2, 128),
    "resnet": (2, 256),
    "bp": (3, 256),
}


def _small_cnn() -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = [
        ConvBNReLU(1, 32), MaxPool(2, 2),
        ConvBNReLU(32, 64), MaxPool(2, 2),
        ConvBNReLU(64, 128), ConvBNReLU(128, 128), MaxPool(2, 1),
        ConvBNReLU(128, 256), MaxPool(2, 1),
    ]
    return layers, 256


def _resnet_cnn() -> tuple[list[nn.Module], int]:
    """Baek et al. (2019) ResNet feature extractor, output 512, blocks [1, 2, 5, 3]."""
    layers: list[nn.Module] = [ConvBNReLU(1, 32), ConvBNReLU(32, 64), MaxPool(2, 2)]
    layers += [BasicBlock(64, 128), ConvBNReLU(128, 128), MaxPool(2, 2)]
    layers += [BasicBlock(128, 256), BasicBlock(256, 256), ConvBNReLU(256, 256), MaxPool(2, 1)]
    layers += [BasicBlock(256, 512)] + [BasicBlock(512, 512) for _ in range(4)]
    layers += [ConvBNReLU(512, 512)]
    layers += [BasicBlock(512, 512) for _ in range(3)]
    layers += [ConvBNReLU(512, 512), MaxPool(2, 1)]
    return layers, 512


def _bp_cnn() -> tuple[list[nn.Module], int]:
    """Retsinas et al. (2022): conv7x7/32 stride (4,2), [2x64, M, 4x128, M, 4x256]."""
    layers: list[nn.Module] = [ConvBNReLU(1, 32, kernel=7, stride=(4, 2))]
    layers += [BasicBlock(32, 64), BasicBlock(64, 64), MaxPool(2, 2)]
    layers += [BasicBlock(64, 128)] + [BasicBlock(128, 128) for _ in range(3)] + [MaxPool(2, 2)]
    layers += [BasicBlock(128, 256)] + [BasicBlock(256, 256) for _ in range(3)]
    return layers, 256


_CNNS = {"small": _small_cnn, "resnet": _resnet_cnn, "bp": _bp_cnn}


class Encoder(nn.Module):
    """CNN -> column max over height -> optional BiLSTM. Returns frames and their counts."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if cfg.preset not in _CNNS:
            raise ValueError(f"unknown encoder preset {cfg.preset!r}; use one of {PRESETS}")
        if cfg.height % 16:
            raise ValueError(f"encoder height must be a multiple of 16, got {cfg.height}")
        self.cfg = cfg
        layers, cnn_dim = _CNNS[cfg.preset]()
        # channels-last is 2x faster for these convs with oneDNN (CPU) and cuDNN (bf16)
        self.cnn = nn.ModuleList(layers).to(memory_format=torch.channels_last)
        self.cnn_dim = cnn_dim
        # The product of horizontal strides: T = ceil(width / wstride).
        self.wstride = 1
        for layer in layers:
            self.wstride *= getattr(layer, "wstride", 1)
        default_layers, default_hidden = _LSTM_DEFAULTS[cfg.preset]
        n_layers = default_layers if cfg.lstm_layers is None else cfg.lstm_layers
        hidden = default_hidden if cfg.lstm_hidden is None else cfg.lstm_hidden
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm: BiLSTM | None = None
        if n_layers > 0:
            self.lstm = BiLSTM(cnn_dim, hidden, n_layers, cfg.dropout if n_layers > 1 else 0.0)
        self.out_dim = 2 * hidden if self.lstm is not None else cnn_dim
        self.fused = True

    def set_fused(self, enabled: bool = True) -> Encoder:
        """Fused element-wise ops (ops.py) in training and the fused CPU reading path
        (cpu_inference.py), the default; or the plain ops, to compare. Same frames up to
        rounding."""
        for module in self.modules():
            if hasattr(module, "fused"):
                module.fused = enabled
        return self

    def dim(self, contextual: bool = True) -> int:
        """Width of the frames `forward(..., contextual)` returns."""
        return self.out_dim if contextual else self.cnn_dim

    def frame_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Frames per sample: ceil(width / horizontal stride), at least 1.

        Pretexts and decoders use this to know how many frames are real without running the
        network (e.g. to skip lines too short for their text before a CTC loss).
        """
        return ceil_div(widths.long().clamp(min=1), self.wstride)

    def _cnn(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[-2] % 16:
            raise ValueError(f"image height must be a multiple of 16, got {images.shape[-2]}")
        x = 1.0 - images  # ink -> 1, white paper and padding -> 0
        pad = -x.shape[-1] % self.wstride  # whole strides so every frame sees a full window
        if pad:
            x = F.pad(x, (0, pad))
        lengths = widths.long().clamp(1, images.shape[-1])
        x = mask_columns(x, lengths).contiguous(memory_format=torch.channels_last)
        pending_relu = False
        for layer, following in zip(self.cnn, [*self.cnn[1:], None], strict=True):
            if isinstance(layer, MaxPool):
                x, lengths = layer(x, lengths, relu=pending_relu)
                pending_relu = False
            else:  # fused: a block followed by a max-pool leaves its ReLU to the pool
                pending_relu = self.fused and isinstance(following, MaxPool)
                x, lengths = layer(x, lengths, relu=not pending_relu)
        return x, lengths

    def _fused_frames(self, images: torch.Tensor, widths: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """`_cnn` and the column max of `forward`, on the fused CPU inference path."""
        if images.shape[-2] % 16:
            raise ValueError(f"image height must be a multiple of 16, got {images.shape[-2]}")
        dtype = cpu_inference.compute_dtype(images)
        x, lengths = cpu_inference.prepare(images, widths, self.wstride, dtype)
        frames = cpu_inference.fused_cnn(self, dtype).frames(x, lengths)
        return frames, self.frame_lengths(widths.clamp(max=images.shape[-1]))

    def feature_map(self, images: torch.Tensor, widths: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """The CNN map (B, C, H/16, ceil(W/stride)) before the height collapse (for heat maps)."""
        if widths is None:
            widths = torch.full((images.shape[0],), images.shape[-1], device=images.device)
        return self._cnn(images, widths)[0]

    def forward(self, images: torch.Tensor, widths: torch.Tensor, contextual: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 1, H, W) in [0, 1], white = 1 -> frames (B, T, out_dim), lengths (B,).

        Frames at or beyond a sample's length are zero; the BiLSTM never reads
        them, which keeps a line's frames independent of what it was batched with.
        `contextual=False` stops before the BiLSTM: the visual frames (B, T, cnn_dim) that
        SeqCLR can contrast instead of the contextual ones.
        """
        if cpu_inference.supported(self, images):
            frames, lengths = self._fused_frames(images, widths)
        else:
            fmap, lengths = self._cnn(images, widths)
            # (B, T, C): column max-pool over height; over a (B, H, W, C) view when fused, which
            # is the channels-last layout: the same maxima 6x faster than over dim 2
            frames = (fmap.permute(0, 2, 3, 1).amax(1) if self.fused
                      else fmap.amax(dim=2).transpose(1, 2))
        if not contextual:
            return frames, lengths
        return self.context(frames, lengths), lengths

    def context(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The part of `forward` after the CNN, on given CNN frames (B, T, cnn_dim), e.g. ones a
        pretext has masked (`persec`): `forward(x, w, True)` is `context(*forward(x, w, False))`.
        Without a BiLSTM the frames come back as they are."""
        if self.lstm is None:
            return frames
        return self.lstm(self.dropout(frames), lengths)


def build_encoder(cfg: EncoderConfig) -> Encoder:
    """Build the encoder a config names (kept as a function so callers never touch presets)."""
    return Encoder(cfg)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
