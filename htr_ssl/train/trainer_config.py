"""The trainer's options (one dataclass, `trainer:` in the configs) and parameter groups."""

from __future__ import annotations

import math
from dataclasses import dataclass

from htr_ssl.inference.runtime import check_precision

SCHEDULES = ("cosine", "step", "constant")
DECAY = ("all", "weights")  # what AdamW's weight decay applies to (see TrainerConfig)


@dataclass
class TrainerConfig:
    """`checkpoint_every`: steps between last.pt writes besides validations and the end (a
    killed run loses at most that many steps; 0: only at validations). `deterministic`: torch's
    deterministic kernels, so a resumed run ends with the same weights as an uninterrupted one
    (on CPU; on CUDA as far as the ops allow). `compile`: torch.compile the encoder (helps on
    GPUs; on the CPU the first steps are slow). `reuse_memory`: on the CPU, glibc keeps freed
    memory for reuse (no page faults on the big maps of every step; the process keeps its peak
    memory; see speed.reuse_freed_memory). Under torchrun, `sync_bn` makes BatchNorm use
    global-batch statistics (GPUs and CPU), and `find_unused_parameters` (true, false or
    auto: on for pretraining) lets DDP handle parameters a step leaves without gradient.
    `decay`: `all` decays every parameter; `weights` only matrices and convolution kernels
    (dim >= 2), not biases and normalization scales (nanoGPT's and most recipes' split)."""

    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
    decay: str = "all"
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01
    step_every: int = 1000
    step_gamma: float = 0.1
    grad_clip: float = 5.0
    precision: str = "bf16"
    device: str = "auto"
    val_every: int = 500
    log_every: int = 10
    checkpoint_every: int = 500
    patience: int = 0
    monitor: str = "cer"
    monitor_mode: str = "min"
    max_bad_steps: int = 10
    seed: int = 0
    progress: bool = True
    deterministic: bool = False
    compile: bool = False
    reuse_memory: bool = True
    sync_bn: bool = True
    find_unused_parameters: bool | str = "auto"

    def __post_init__(self) -> None:
        if self.find_unused_parameters not in (True, False, "auto"):
            raise ValueError(f"trainer.find_unused_parameters={self.find_unused_parameters!r}; "
                             "use true, false or auto")
        check_precision(self.precision, "trainer.precision")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"trainer.monitor_mode={self.monitor_mode!r}; use min or max")
        if self.decay not in DECAY:
            raise ValueError(f"trainer.decay={self.decay!r}; valid: {', '.join(DECAY)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"trainer.schedule={self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        for option in ("lr", "weight_decay", "min_lr_ratio", "step_gamma", "grad_clip"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"trainer.{option}={value!r} must be a finite number")
        for option in ("max_steps", "val_every", "log_every", "step_every", "max_bad_steps"):
            if getattr(self, option) < 1:
                raise ValueError(f"trainer.{option}={getattr(self, option)} must be >= 1")
        for option in ("warmup_steps", "checkpoint_every", "patience", "weight_decay"):
            if getattr(self, option) < 0:
                raise ValueError(f"trainer.{option}={getattr(self, option)} must be >= 0")
        for option in ("lr", "grad_clip", "step_gamma"):
            if not getattr(self, option) > 0:
                raise ValueError(f"trainer.{option}={getattr(self, option)} must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"trainer.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")


@dataclass(frozen=True)
class ParamGroup:
    """Parameters whose names start with `prefix` train at `lr_scale` x the schedule's rate, and
    not at all before step `start` (no gradient is computed for them then), after which their
    rate ramps up over the trainer's warmup: how a pretrained encoder is fine-tuned."""

    prefix: str
    lr_scale: float = 1.0
    start: int = 0
