"""One training loop for every stage (pretext pretraining, supervised training, fine-tuning).

The loop knows nothing of text or pretexts: it calls `loss_fn(model, batch) -> (loss, metrics)`
and, every `val_every` steps, `validate(model) -> metrics`. Everything that decides the next
step (weights, optimizer, schedule, RNG, data position: `LoopState`) is in the checkpoint, so
`resume` continues a run exactly. Read `_fit` top to bottom; `_Run` holds what one step needs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from htr_ssl.errors import FixableError
from htr_ssl.inference.runtime import autocast, resolve_device
from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.distributed import (
    DistInfo,
    all_agree,
    broadcast_flag,
    needs_find_unused,
    sync_batchnorm,
    wrap_ddp,
)
from htr_ssl.train.interrupt import StopSignals, TrainingInterrupted
from htr_ssl.train.logger import RunLogger
from htr_ssl.train.schedule import delayed, lr_lambda
from htr_ssl.train.speed import adamw, compile_model, pad_ratio, reuse_freed_memory
from htr_ssl.train.trainer_config import ParamGroup, TrainerConfig

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
ValidateFn = Callable[[nn.Module], dict[str, float]]


class TrainingDiverged(RuntimeError, FixableError):
    """The loss stayed NaN/inf for too many consecutive steps."""


@dataclass
class LoopState:
    """Where a run stands; saved (as a plain dict) in every checkpoint under "loop"."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    evals_since_best: int = 0
    skipped_steps: int = 0
    skipped_samples: int = 0
    unreadable: int = 0
    stopped_early: bool = False

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> LoopState:
        """A checkpoint's "loop" (one of an earlier version may lack later counters)."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


@dataclass
class FitResult:
    step: int
    best: float | None
    best_metrics: dict[str, float]
    last_path: Path
    best_path: Path | None
    stopped_early: bool
    skipped_steps: int
    skipped_samples: int


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic torch kernels (a warning, not an error, for ops that have none) and no
    cuDNN autotuning, for the duration of a run; the previous settings come back afterwards."""
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:]


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    loader: DataLoader,
    cfg: TrainerConfig,
    run_dir: Path,
    validate: ValidateFn | None = None,
    resume: Path | None = None,
    meta: dict[str, Any] | None = None,
    dist_info: DistInfo | None = None,
    groups: tuple[ParamGroup, ...] = (),
) -> FitResult:
    """Train `model` for `cfg.max_steps` optimizer steps; checkpoints go to `run_dir`.

    `meta` (alphabet, resolved config, ...) is stored in every checkpoint. Writes last.pt every
    `checkpoint_every` steps, after each validation and at the end, and best.pt whenever
    `cfg.monitor` improves. SIGTERM / Ctrl-C finish the step, write last.pt and raise
    TrainingInterrupted (on every rank, at the same step). `groups` give some parameters their
    own learning-rate scale and start step (see ParamGroup).
    """
    run_dir = Path(run_dir)
    dist_info = dist_info or DistInfo()
    rundir.check_folder(run_dir, resume, dist_info.is_main)
    if dist_info.is_main:
        checkpoint.clean_partial(run_dir)
    with deterministic_mode(cfg.deterministic), StopSignals() as signals:
        return _fit(model, loss_fn, loader, cfg, run_dir, validate, resume, meta, dist_info,
                    signals, groups)


def _fit(model: nn.Module, loss_fn: LossFn, loader: DataLoader, cfg: TrainerConfig,
         run_dir: Path, validate: ValidateFn | None, resume: Path | None,
         meta: dict[str, Any] | None, dist_info: DistInfo, signals: StopSignals,
         groups: tuple[ParamGroup, ...] = ()) -> FitResult:
    run = _Run(model, loss_fn, cfg, run_dir, meta, dist_info, groups, resume)
    state = run.state
    bar = tqdm(total=cfg.max_steps, initial=state.step, disable=not (cfg.progress and
               dist_info.is_main), dynamic_ncols=True, desc=run_dir.name)
    stop, interrupted = state.stopped_early, False
    if stop:
        log.info("this run stopped early at step %d: nothing left to train", state.step)
    batch_size = loader.batch_size or 1
    run.model.train()
    while state.step < cfg.max_steps and not stop and not interrupted:
        loader.sampler.set_epoch(state.epoch, start=state.batch_in_epoch * batch_size)
        for batch in loader:
            run.train_step(batch)
            bar.update(1)
            step = state.step
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                bar.set_postfix(run.log_train())
            if validate is not None and (step % cfg.val_every == 0 or step == cfg.max_steps):
                run.check_weights()
                stop = state.stopped_early = run.validate(validate)
                run.model.train()
            # any rank's signal stops every rank at this same step
            interrupted = not all_agree(signals.signum is None, dist_info, run.device)
            periodic = cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
            if periodic or interrupted or stop or step == cfg.max_steps \
                    or step % cfg.val_every == 0:
                run.check_weights()
                run.save(run.last_path)
            if interrupted:
                broadcast_flag(True, dist_info, run.device)  # a barrier: rank 0 has saved
            if step >= cfg.max_steps or stop or interrupted:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    run.close()
    if interrupted:
        signum = signals.signum or signal.SIGTERM
        log.warning("%s received: saved %s at step %d", signal.Signals(signum).name,
                    run.last_path, state.step)
        raise TrainingInterrupted(signum, state.step, run.last_path)
    _warn_left_out(state)
    return FitResult(state.step, state.best, state.best_metrics, run.last_path,
                     run.best_path if run.best_path.exists() else None, stop,
                     state.skipped_steps, state.skipped_samples)


class _Run:
    """The model, its optimizer and schedule, the loop's state and its logger: one optimizer
    step, one validation, one checkpoint at a time."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, cfg: TrainerConfig, run_dir: Path,
                 meta: dict[str, Any] | None, dist_info: DistInfo,
                 groups: tuple[ParamGroup, ...], resume: Path | None) -> None:
        self.cfg, self.run_dir, self.dist_info = cfg, run_dir, dist_info
        self.last_path, self.best_path = run_dir / "last.pt", run_dir / "best.pt"
        self.device = resolve_device(cfg.device, dist_info.local_rank)
        if self.device.type == "cpu" and cfg.reuse_memory:
            reuse_freed_memory()
        model.to(self.device)
        if dist_info.enabled:
            model = sync_batchnorm(model, self.device, cfg.sync_bn)
        self.model = model
        # a model's own update after each optimizer step (pretexts' momentum targets)
        self.after_step: Callable[[], None] = getattr(model, "after_step", lambda: None)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        base = lr_lambda(cfg.schedule, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio,
                         cfg.step_every, cfg.step_gamma)
        members = group_parameters(model, groups)
        factors = [base] + [delayed(base, g.start, cfg.warmup_steps, g.lr_scale)
                            for g in groups]
        param_groups, lambdas = [], []
        for factor, params in zip(factors, members, strict=True):
            for group in decay_groups(params, cfg.decay):
                param_groups.append(group)
                lambdas.append(factor)
        self.optimizer = adamw(param_groups, self.device, cfg.lr, cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambdas)
        self.delayed_groups = [(g, p) for g, p in zip(groups, members[1:], strict=True)
                               if g.start > 0]
        self.state = LoopState()
        if resume is not None:
            _restore(resume, model, self.optimizer, self.scheduler, self.state)
        else:
            torch.manual_seed(cfg.seed)
        if cfg.compile:
            compile_model(model)
        if dist_info.enabled:
            find_unused = bool(self.delayed_groups) or needs_find_unused(
                model, cfg.find_unused_parameters)
            self.compute: LossFn | Callable[[Any], Any] = wrap_ddp(
                _LossModule(model, loss_fn), self.device, find_unused)
        else:
            self.compute = lambda batch: loss_fn(model, batch)
        self.logger = RunLogger(run_dir, enabled=dist_info.is_main)
        self.meta = dict(meta or {})
        self.bad_in_row, self.seen, self.pads, self.t0 = 0, 0, [], time.perf_counter()
        self.loss, self.metrics = torch.tensor(0.0), {}
        self.grad_norm = torch.tensor(float("nan"))

    def snapshot(self, resumable: bool = True) -> dict[str, Any]:
        """Everything the next step needs (last.pt), or without the optimizer state (best.pt:
        about a third of the size; it is read for its weights, never resumed)."""
        state = {"model": self.model.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": checkpoint.rng_state(), "loop": asdict(self.state),
                 "trainer": asdict(self.cfg), **self.meta}
        return {**state, "optimizer": self.optimizer.state_dict()} if resumable else state

    def save(self, path: Path, resumable: bool = True) -> None:
        if self.dist_info.is_main:
            checkpoint.save(self.snapshot(resumable), path)

    def train_step(self, batch: Any) -> None:
        """One optimizer step on `batch`, or a skipped one when the loss is not finite (on any
        rank); too many skipped in a row raise TrainingDiverged with the state saved."""
        cfg, state = self.cfg, self.state
        state.batch_in_epoch += 1
        self.pads.append(pad_ratio(batch))  # on the CPU copy: no device sync
        batch = batch.to(self.device)
        for group, members in self.delayed_groups:  # held still: no gradient, no update
            for p in members:
                p.requires_grad_(state.step >= group.start)
        with autocast(self.device, cfg.precision):
            loss, metrics = self.compute(batch)
        finite = all_agree(bool(torch.isfinite(loss)), self.dist_info, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        if finite:
            loss.backward()
            self.grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.after_step()
            self.bad_in_row = 0
        else:
            state.skipped_steps += 1
            self.bad_in_row += 1
            log.warning("non-finite loss at step %d: step skipped", state.step)
            if self.bad_in_row >= cfg.max_bad_steps:
                self.save(self.run_dir / "diverged.pt")
                raise TrainingDiverged(
                    f"loss was NaN/inf for {self.bad_in_row} steps in a row (step "
                    f"{state.step}); lower trainer.lr, raise trainer.warmup_steps, try "
                    "trainer.precision=fp32, or check the data for empty/garbled images. "
                    f"State saved to {self.run_dir / 'diverged.pt'}.")
            self.grad_norm = torch.tensor(float("nan"))
        state.step += 1
        state.skipped_samples += int(metrics.get("skipped", 0))
        state.unreadable += getattr(batch, "dropped", 0)
        self.seen += len(batch)
        self.loss, self.metrics = loss, metrics

    def log_train(self) -> dict[str, str]:
        """Log the last step's scalars; returns the progress bar's summary."""
        loss = float(self.loss.detach())
        rate = self.seen / max(time.perf_counter() - self.t0, 1e-9)
        scalars = {"loss": loss, "lr": self.scheduler.get_last_lr()[0],
                   "grad_norm": float(self.grad_norm), "samples_per_s": rate,
                   **{k: float(v) for k, v in self.metrics.items()}}
        if self.pads and None not in self.pads:  # mean share of padded pixels since last log
            scalars["pad_ratio"] = sum(self.pads) / len(self.pads)
        self.pads.clear()
        self.logger.log("train", self.state.step, scalars)
        return {"loss": f"{loss:.3f}", "lr": f"{scalars['lr']:.1e}", "sps": f"{rate:.0f}"}

    def validate(self, validate: ValidateFn) -> bool:
        """Validate on rank 0, keep best.pt, and decide (for every rank) whether to stop."""
        cfg, state, stop = self.cfg, self.state, False
        if self.dist_info.is_main:
            self.model.eval()
            with torch.no_grad(), autocast(self.device, cfg.precision):
                metrics = validate(self.model)
            self.logger.log("val", state.step, metrics)
            value = metrics.get(cfg.monitor)
            if value is None or not math.isfinite(value):
                raise KeyError(f"validation returned no finite {cfg.monitor!r}; got {metrics}")
            if state.best is None or (value < state.best if cfg.monitor_mode == "min"
                                      else value > state.best):
                state.best, state.best_metrics, state.evals_since_best = value, dict(metrics), 0
                self.save(self.best_path, resumable=False)
            else:
                state.evals_since_best += 1
            log.info("step %d: %s", state.step,
                     " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
            stop = cfg.patience > 0 and state.evals_since_best >= cfg.patience
            if stop:
                log.info("early stop: %s did not improve for %d validations", cfg.monitor,
                         cfg.patience)
        return broadcast_flag(stop, self.dist_info, self.device)

    def check_weights(self) -> None:
        """TrainingDiverged when a weight is NaN/inf, before it is saved as best.pt or
        last.pt: steps with a finite loss can still blow the weights up (a learning rate far
        too high), and such a run must not end as a finished one. Every rank checks the same
        (synced) weights."""
        if all(bool(torch.isfinite(p).all()) for p in self.params):
            return
        self.save(self.run_dir / "diverged.pt")
        raise TrainingDiverged(
            f"the weights became NaN/inf by step {self.state.step} although the loss was "
            "finite; lower trainer.lr, raise trainer.warmup_steps or lower trainer.grad_clip. "
            f"State saved to {self.run_dir / 'diverged.pt'}.")

    def close(self) -> None:
        self.logger.close()
        for _, members in self.delayed_groups:
            for p in members:
                p.requires_grad_(True)
        if not self.last_path.exists():  # a fork whose schedule was already done
            self.save(self.last_path)


def _warn_left_out(state: LoopState) -> None:
    if state.skipped_steps:
        log.warning("%d steps were skipped for non-finite loss", state.skipped_steps)
    if state.skipped_samples:
        log.warning("%d times a training sample was left out of the loss (e.g. an image too "
                    "narrow for its transcription under CTC; the warning before training names "
                    "them)", state.skipped_samples)
    if state.unreadable:
        log.warning("%d unreadable images were left out of training (see the warnings naming "
                    "them; data.strict_images=true makes this an error)", state.unreadable)


def group_parameters(model: nn.Module, groups: tuple[ParamGroup, ...]
                     ) -> list[list[nn.Parameter]]:
    """[the other trainable parameters, then each group's], by name prefix (first match wins);
    a group that matches nothing is an error naming the prefix."""
    members: list[list[nn.Parameter]] = [[] for _ in range(len(groups) + 1)]
    for name, p in model.named_parameters():
        if p.requires_grad:
            hit = next((i for i, g in enumerate(groups, 1) if name.startswith(g.prefix)), 0)
            members[hit].append(p)
    for group, found in zip(groups, members[1:], strict=True):
        if not found:
            raise ValueError(f"no trainable parameter is named {group.prefix}*")
    return members


def decay_groups(params: list[nn.Parameter], decay: str) -> list[dict[str, Any]]:
    """AdamW groups for `params`: one that takes the trainer's weight decay (`all`), or with
    `weights` the matrices and kernels (dim >= 2) in one and biases and normalization scales in
    another without decay. No group for no parameter."""
    if decay == "all":
        return [{"params": params}] if params else []
    weights = [p for p in params if p.dim() >= 2]
    others = [p for p in params if p.dim() < 2]
    return ([{"params": weights}] if weights else []) + \
        ([{"params": others, "weight_decay": 0.0}] if others else [])


def _restore(resume: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, state: LoopState) -> None:
    """Load everything that decides the next step, or say which part does not fit."""
    ckpt = checkpoint.load(resume)
    missing = [k for k in ("optimizer", "scheduler", "rng", "loop") if k not in ckpt]
    if missing:
        raise checkpoint.CheckpointError(
            f"{resume} cannot be resumed (it lacks {', '.join(missing)}: best.pt and exported "
            f"models hold weights only). Fix: resume from the run's last.pt "
            f"({Path(resume).with_name('last.pt')}); to start a new run from these weights use "
            f"finetune.init_from={resume}")
    checkpoint.load_weights(
        model, ckpt["model"], resume, "model",
        "resume with the configuration of the run that wrote it (model, decoder or pretext, "
        "and data with the same alphabet: a different alphabet size changes the output layer); "
        "to start a new run from its encoder use finetune.init_from")
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError) as err:
        raise checkpoint.CheckpointError(
            f"the optimizer state in {resume} does not fit this run ({err}); resume with the same "
            "trainable layers as the run that wrote it (e.g. the same finetune.mode)") from err
    checkpoint.set_rng_state(ckpt["rng"])
    for key, value in asdict(LoopState.from_dict(ckpt["loop"])).items():
        setattr(state, key, value)
    log.info("resumed %s at step %d", resume, state.step)


class _LossModule(nn.Module):
    """Routes the loss through `forward`, which DDP needs to synchronize gradients."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss_fn(self.model, batch)
