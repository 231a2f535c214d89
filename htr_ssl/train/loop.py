"""One training loop for every stage (pretext pretraining, supervised training, fine-tuning).

The loop knows nothing of text or pretexts: it calls `loss_fn(model, batch) -> (loss, metrics)`
and, every `val_every` steps, `validate(model) -> metrics`. Everything that decides the next
step (weights, optimizer, schedule, RNG, data position) is in the checkpoint, so `resume`
continues a run exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import (
    DistInfo,
    all_agree,
    broadcast_flag,
    needs_find_unused,
    resolve_device,
    sync_batchnorm,
    wrap_ddp,
)
from htr_ssl.train.interrupt import StopSignals, TrainingInterrupted
from htr_ssl.train.logger import RunLogger
from htr_ssl.train.schedule import delayed, lr_lambda
from htr_ssl.train.speed import autocast, check_precision, compile_model, pad_ratio

log = logging.getLogger(__name__)

SCHEDULES = ("cosine", "step", "constant")
LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
ValidateFn = Callable[[nn.Module], dict[str, float]]


class TrainingDiverged(RuntimeError):
    """The loss stayed NaN/inf for too many consecutive steps."""


@dataclass
class TrainerConfig:
    """`checkpoint_every`: steps between last.pt writes besides validations and the end (a
    killed run loses at most that many steps; 0: only at validations). `deterministic`: torch's
    deterministic kernels, so a resumed run ends with the same weights as an uninterrupted one
    (on CPU; on CUDA as far as the ops allow). `compile`: torch.compile the encoder (helps on
    GPUs; on the CPU the first steps are slow). Under torchrun, `sync_bn` makes BatchNorm use
    global-batch statistics (GPUs and CPU), and `find_unused_parameters` (true, false or
    auto: on for pretraining) lets DDP handle parameters a step leaves without gradient."""

    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
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
    sync_bn: bool = True
    find_unused_parameters: bool | str = "auto"

    def __post_init__(self) -> None:
        if self.find_unused_parameters not in (True, False, "auto"):
            raise ValueError(f"trainer.find_unused_parameters={self.find_unused_parameters!r}; "
                             "use true, false or auto")
        check_precision(self.precision, "trainer.precision")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"trainer.monitor_mode={self.monitor_mode!r}; use min or max")
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
    last_path = run_dir / "last.pt"
    if resume is None and last_path.exists():
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({last_path}); continue it "
                              f"with resume={last_path} (or resume=auto) or choose a new run "
                              "directory")
    if dist_info.is_main:
        checkpoint.ensure_writable(run_dir)
        checkpoint.clean_partial(run_dir)
    with deterministic_mode(cfg.deterministic), StopSignals() as signals:
        return _fit(model, loss_fn, loader, cfg, run_dir, validate, resume, meta, dist_info,
                    signals, groups)


def _fit(model: nn.Module, loss_fn: LossFn, loader: DataLoader, cfg: TrainerConfig,
         run_dir: Path, validate: ValidateFn | None, resume: Path | None,
         meta: dict[str, Any] | None, dist_info: DistInfo, signals: StopSignals,
         groups: tuple[ParamGroup, ...] = ()) -> FitResult:
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    device = resolve_device(cfg.device, dist_info.local_rank)
    model.to(device)
    if dist_info.enabled:
        model = sync_batchnorm(model, device, cfg.sync_bn)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    base = lr_lambda(cfg.schedule, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio,
                     cfg.step_every, cfg.step_gamma)
    members = group_parameters(model, groups)
    optimizer = torch.optim.AdamW([{"params": p} for p in members if p], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    factors = [base] + [delayed(base, g.start, cfg.warmup_steps, g.lr_scale) for g in groups]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [f for f, p in zip(factors, members, strict=True) if p])
    delayed_groups = [(g, p) for g, p in zip(groups, members[1:], strict=True) if g.start > 0]
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "best_metrics": {},
             "evals_since_best": 0, "skipped_steps": 0, "skipped_samples": 0, "unreadable": 0,
             "stopped_early": False}
    if resume is not None:
        _restore(resume, model, optimizer, scheduler, state)
    else:
        torch.manual_seed(cfg.seed)
    if cfg.compile:
        compile_model(model)
    if dist_info.enabled:
        ddp = wrap_ddp(_LossModule(model, loss_fn), device,
                       bool(delayed_groups) or needs_find_unused(model,
                                                                cfg.find_unused_parameters))

        def compute(batch):
            return ddp(batch)
    else:

        def compute(batch):
            return loss_fn(model, batch)
    logger = RunLogger(run_dir, enabled=dist_info.is_main)
    meta = dict(meta or {})
    better = (lambda a, b: a < b) if cfg.monitor_mode == "min" else (lambda a, b: a > b)

    def snapshot(resumable: bool = True) -> dict[str, Any]:
        """Everything the next step needs (last.pt), or without the optimizer state (best.pt:
        about a third of the size; it is read for its weights, never resumed)."""
        state_ = {"model": model.state_dict(), "scheduler": scheduler.state_dict(),
                  "rng": checkpoint.rng_state(), "loop": dict(state), "trainer": asdict(cfg),
                  **meta}
        return {**state_, "optimizer": optimizer.state_dict()} if resumable else state_

    bar = tqdm(total=cfg.max_steps, initial=state["step"], disable=not (cfg.progress and
               dist_info.is_main), dynamic_ncols=True, desc=run_dir.name)
    bad_in_row, stop, interrupted = 0, bool(state["stopped_early"]), False
    if stop:
        log.info("this run stopped early at step %d: nothing left to train", state["step"])
    t0, seen, pads = time.perf_counter(), 0, []
    batch_size = loader.batch_size or 1
    model.train()
    while state["step"] < cfg.max_steps and not stop and not interrupted:
        loader.sampler.set_epoch(state["epoch"], start=state["batch_in_epoch"] * batch_size)
        for batch in loader:
            state["batch_in_epoch"] += 1
            pads.append(pad_ratio(batch))  # on the CPU copy: no device sync
            batch = batch.to(device)
            for group, members_ in delayed_groups:  # held still: no gradient, no update
                for p in members_:
                    p.requires_grad_(state["step"] >= group.start)
            with autocast(device, cfg.precision):
                loss, metrics = compute(batch)
            finite = all_agree(bool(torch.isfinite(loss)), dist_info, device)
            optimizer.zero_grad(set_to_none=True)
            if finite:
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                bad_in_row = 0
            else:
                state["skipped_steps"] += 1
                bad_in_row += 1
                log.warning("non-finite loss at step %d: step skipped", state["step"])
                if bad_in_row >= cfg.max_bad_steps:
                    checkpoint.save(snapshot(), run_dir / "diverged.pt")
                    raise TrainingDiverged(
                        f"loss was NaN/inf for {bad_in_row} steps in a row (step "
                        f"{state['step']}); lower trainer.lr, raise trainer.warmup_steps, try "
                        "trainer.precision=fp32, or check the data for empty/garbled images. "
                        f"State saved to {run_dir / 'diverged.pt'}.")
                grad_norm = torch.tensor(float("nan"))
            state["step"] += 1
            state["skipped_samples"] += int(metrics.get("skipped", 0))
            state["unreadable"] += getattr(batch, "dropped", 0)
            seen += len(batch)
            bar.update(1)
            step = state["step"]
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                loss = loss.detach()
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                scalars = {"loss": float(loss), "lr": scheduler.get_last_lr()[0],
                           "grad_norm": float(grad_norm), "samples_per_s": rate,
                           **{k: float(v) for k, v in metrics.items()}}
                if pads and None not in pads:  # mean share of padded pixels since last log
                    scalars["pad_ratio"] = sum(pads) / len(pads)
                pads.clear()
                logger.log("train", step, scalars)
                bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{scalars['lr']:.1e}",
                                sps=f"{rate:.0f}")
            validating = validate is not None and (step % cfg.val_every == 0
                                                   or step == cfg.max_steps)
            if validating:
                _check_weights(params, state["step"], run_dir, snapshot, dist_info)
                stop = _validate(model, validate, cfg, state, logger, dist_info, better,
                                 snapshot, best_path, device)
                state["stopped_early"] = stop
                model.train()
            # any rank's signal stops every rank at this same step
            interrupted = not all_agree(signals.signum is None, dist_info, device)
            periodic = cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
            if periodic or interrupted or stop or step == cfg.max_steps \
                    or step % cfg.val_every == 0:
                _check_weights(params, state["step"], run_dir, snapshot, dist_info)
                if dist_info.is_main:
                    checkpoint.save(snapshot(), last_path)
            if interrupted:
                broadcast_flag(True, dist_info, device)  # a barrier: rank 0 has saved
            if step >= cfg.max_steps or stop or interrupted:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    logger.close()
    for _, members_ in delayed_groups:
        for p in members_:
            p.requires_grad_(True)
    if dist_info.is_main and not last_path.exists():  # a fork whose schedule was already done
        checkpoint.save(snapshot(), last_path)
    if interrupted:
        signum = signals.signum or signal.SIGTERM
        log.warning("%s received: saved %s at step %d", signal.Signals(signum).name, last_path,
                    state["step"])
        raise TrainingInterrupted(signum, state["step"], last_path)
    if state["skipped_steps"]:
        log.warning("%d steps were skipped for non-finite loss", state["skipped_steps"])
    if state["skipped_samples"]:
        log.warning("%d times a training sample was left out of the loss (e.g. an image too "
                    "narrow for its transcription under CTC; the warning before training names "
                    "them)", state["skipped_samples"])
    if state["unreadable"]:
        log.warning("%d unreadable images were left out of training (see the warnings naming "
                    "them; data.strict_images=true makes this an error)", state["unreadable"])
    return FitResult(state["step"], state["best"], state["best_metrics"], last_path,
                     best_path if best_path.exists() else None, stop, state["skipped_steps"],
                     state["skipped_samples"])


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


def _check_weights(params: list[nn.Parameter], step: int, run_dir: Path,
                   snapshot: Callable[[], dict[str, Any]], dist_info: DistInfo) -> None:
    """TrainingDiverged when a weight is NaN/inf, before it is saved as best.pt or last.pt:
    steps with a finite loss can still blow the weights up (a learning rate far too high), and
    such a run must not end as a finished one. Every rank checks the same (synced) weights."""
    if all(bool(torch.isfinite(p).all()) for p in params):
        return
    if dist_info.is_main:
        checkpoint.save(snapshot(), run_dir / "diverged.pt")
    raise TrainingDiverged(
        f"the weights became NaN/inf by step {step} although the loss was finite; lower "
        f"trainer.lr, raise trainer.warmup_steps or lower trainer.grad_clip. State saved to "
        f"{run_dir / 'diverged.pt'}.")


def _restore(resume: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, state: dict[str, Any]) -> None:
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
    state.update(ckpt["loop"])
    log.info("resumed %s at step %d", resume, state["step"])


class _LossModule(nn.Module):
    """Routes the loss through `forward`, which DDP needs to synchronize gradients."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss_fn(self.model, batch)


def _validate(model, validate, cfg, state, logger, dist_info, better, snapshot, best_path,
              device) -> bool:
    """Run validation on rank 0, keep best.pt, and decide (for every rank) whether to stop."""
    stop = False
    if dist_info.is_main:
        model.eval()
        with torch.no_grad(), autocast(device, cfg.precision):
            metrics = validate(model)
        logger.log("val", state["step"], metrics)
        value = metrics.get(cfg.monitor)
        if value is None or not math.isfinite(value):
            raise KeyError(f"validation returned no finite {cfg.monitor!r}; got {metrics}")
        if state["best"] is None or better(value, state["best"]):
            state.update(best=value, best_metrics=dict(metrics), evals_since_best=0)
            checkpoint.save(snapshot(resumable=False), best_path)
        else:
            state["evals_since_best"] += 1
        log.info("step %d: %s", state["step"],
                 " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
        stop = cfg.patience > 0 and state["evals_since_best"] >= cfg.patience
        if stop:
            log.info("early stop: %s did not improve for %d validations", cfg.monitor,
                     cfg.patience)
    return broadcast_flag(stop, dist_info, device)
