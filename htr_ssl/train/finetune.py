"""Supervised training and fine-tuning of a recognizer, from data config to test metrics.

One function serves the from-scratch baseline (no `init_from`), fine-tuning of a pretrained
encoder (`mode=full`) and decoder evaluation (`mode=frozen`: the encoder's weights and batch
norm statistics stay as pretrained; only the decoder trains).
"""

from __future__ import annotations

import contextlib
import json
import logging
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.pipeline import DataConfig, cached_crops, make_loader, prepare
from htr_ssl.data.sample import Sample
from htr_ssl.eval.evaluate import DecodeConfig, evaluate, write_results
from htr_ssl.eval.metrics import MetricConfig
from htr_ssl.models.recognizer import (
    Recognizer,
    RecognizerConfig,
    build_recognizer,
    recognizer_loss,
)
from htr_ssl.pretext.registry import build_pretext, pretext_config
from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.distributed import DistInfo, init_from_env
from htr_ssl.train.generated import ensure_generated
from htr_ssl.train.joint import AuxTask, JointModel, joint_loss
from htr_ssl.train.loop import fit
from htr_ssl.train.trainer_config import ParamGroup, TrainerConfig

if TYPE_CHECKING:
    from htr_ssl.data.synthetic import GenerateConfig

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """`init_from`: any htr-ssl checkpoint whose encoder seeds this run (kraken's --load);
    `mode`: full | frozen. With `init_from` and mode full, the pretrained encoder is held
    still for `freeze_steps` while the fresh decoder learns to read it, then trains at
    `encoder_lr` x the decoder's rate (see docs/results.md for why the defaults are these).
    `aux`: a pretext trained alongside on the training split's images, labeled or not, at
    `aux_weight` x its loss (S4L, train/joint.py); `aux_options` are its options."""

    init_from: str | None = None
    mode: str = "full"
    freeze_steps: int = 0
    encoder_lr: float = 1.0
    aux: str | None = None
    aux_weight: float = 0.5
    aux_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("full", "frozen"):
            raise ValueError(f"finetune.mode={self.mode!r}; use full or frozen")
        if self.freeze_steps < 0:
            raise ValueError(f"finetune.freeze_steps={self.freeze_steps} must be >= 0")
        if not 0 < self.encoder_lr < float("inf"):
            raise ValueError(f"finetune.encoder_lr={self.encoder_lr} must be a positive "
                             "number (a multiple of trainer.lr)")
        if self.aux is not None:
            self.aux_config()  # an unknown pretext or option fails here, before any data
            if self.mode != "full":
                raise ValueError("finetune.aux trains the encoder: use finetune.mode=full")
            if not 0 < self.aux_weight < float("inf"):
                raise ValueError(f"finetune.aux_weight={self.aux_weight} must be > 0")

    def aux_config(self) -> Any:
        """The config dataclass of the `aux` pretext with `aux_options` applied."""
        return pretext_config(self.aux, self.aux_options, "finetune.aux_options.")

    def groups(self) -> tuple[ParamGroup, ...]:
        """The encoder's own learning-rate group when fine-tuning a pretrained encoder."""
        if not self.init_from or self.mode != "full":
            return ()
        if self.freeze_steps == 0 and self.encoder_lr == 1.0:
            return ()
        return (ParamGroup("encoder.", self.encoder_lr, self.freeze_steps),)


@dataclass
class TrainJob:
    data: DataConfig
    model: RecognizerConfig
    trainer: TrainerConfig
    run_dir: Path
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    resume: Path | str | None = None  # a checkpoint, or "auto" (see train_recognizer)
    config: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""  # the name reports use for this data (e.g. the `data=` choice)
    method: str = ""  # the name reports use for this start (default: from init_from)
    stage: bool = False  # an experiment's intermediate stage (e.g. synthetic-supervised): no row
    fork: bool = False  # continue `resume` in run_dir, a new folder, even with changed options
    generate: GenerateConfig | None = None  # the synthetic set `data` reads: made if missing


def describe_run(job: TrainJob, init_meta: dict[str, Any] | None) -> dict[str, Any]:
    """What a report needs to place this run in its table: method x dataset x fraction x protocol.

    The method is the pretext (or pretexts) of the checkpoint the encoder came from, "scratch"
    without one, and "supervised" for an encoder taken from a recognizer.
    """
    meta = init_meta or {}
    if job.method:
        method = job.method
    elif not job.finetune.init_from:
        method = "scratch"
    else:
        method = meta.get("method") or ("supervised" if meta.get("kind") == "recognizer"
                                        else "pretrained")
    if job.finetune.aux:  # S4L: a row of its own
        method = f"{method} + {job.finetune.aux} alongside"
    run = {"method": method, "dataset": job.dataset or job.data.name,
           "labels": job.data.labels, "protocol": job.finetune.mode, "seed": job.trainer.seed,
           "encoder": job.model.encoder.preset, "decoder": job.model.decoder.kind,
           "init_from": job.finetune.init_from}
    if meta.get("kind") == "pretext":  # how well the encoder learned its own task
        run["pretext"] = dict((meta.get("loop") or {}).get("best_metrics") or {})
    if job.stage:
        run["stage"] = True
    return run


def freeze(module: nn.Module) -> None:
    """No gradients, and eval mode that `model.train()` cannot undo (frozen BN statistics)."""
    module.requires_grad_(False)
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: self, module)  # type: ignore


def job_options(job: TrainJob) -> dict[str, Any]:
    """What decides the data, model and schedule of a run, by option name (`data.labels`,
    `model.preset`, `decoder.kind`, ...): a resume must not change it."""
    return {"data": asdict(job.data), "model": asdict(job.model.encoder),
            "decoder": asdict(job.model.decoder),
            "trainer": asdict(job.trainer), "finetune": asdict(job.finetune)}


@dataclass
class TrainSummary:
    """What a recognizer run reports back to its command."""

    main: bool  # the main process (under torchrun the others stay quiet)
    step: int   # optimizer steps the run has made
    test: dict[str, Any] | None = None  # the test split's metrics, as in metrics.json
    best_val: dict[str, float] = field(default_factory=dict)
    skipped_steps: int = 0    # non-finite losses
    skipped_samples: int = 0  # lines too narrow for their text under CTC
    finished: bool = False    # it had finished before (resume=auto): nothing was trained
    skipped: str | None = None  # an experiment cell that was not run, and why


def train_recognizer(job: TrainJob, on_start: Callable[[], None] | None = None
                     ) -> TrainSummary:
    """Train, keep the best checkpoint by validation CER, and score it on the test split.

    `job.resume` is a checkpoint path, None (a new run), or "auto": continue run_dir/last.pt
    if the run was interrupted, skip it if it finished (`TrainSummary.finished`), else start.
    The run folder is locked while the run writes to it; `on_start` is called (on the main
    process) once the run is accepted, before any data is read.
    """
    dist = init_from_env()
    with rundir.locked(job.run_dir) if dist.is_main else contextlib.nullcontext():
        return _train(job, dist, on_start)


def _train(job: TrainJob, dist: DistInfo, on_start: Callable[[], None] | None
           ) -> TrainSummary:
    run_dir = Path(job.run_dir)
    options = job_options(job)
    resume, ckpt = rundir.begin(run_dir, job.resume, "recognizer", options, job.fork,
                                dist.is_main)
    if resume == checkpoint.FINISHED:
        return finished_summary(run_dir, dist.is_main)
    alphabet = None
    if ckpt is not None:
        if "alphabet" not in ckpt:
            raise checkpoint.CheckpointError(f"{resume} has no alphabet: it is not a recognizer "
                                             "checkpoint. Fix: " + rundir.HINTS["recognizer"]
                                             .format(path=resume))
        alphabet = Alphabet.from_dict(ckpt["alphabet"])
    init = checkpoint.load(job.finetune.init_from) if job.finetune.init_from else None
    if dist.is_main and on_start is not None:
        on_start()
    if job.generate is not None:
        ensure_generated(job.generate)
    try:
        data = prepare(job.data, run_dir if dist.is_main else None, alphabet)
    except OutOfAlphabetError as err:
        if resume is None:
            raise
        raise OutOfAlphabetError(
            f"the data has characters that the alphabet of the resumed run ({resume}) lacks. "
            "Resume with the data the run started with, or start a new run with "
            f"finetune.init_from={resume} (it takes only the encoder).\n{err}") from err
    alphabet = data.alphabet
    if dist.is_main:
        alphabet.save(run_dir / "alphabet.json")
    torch.manual_seed(job.trainer.seed)  # weight init is part of the run's seed
    model = build_recognizer(job.model, alphabet)
    if model.ctc is not None:
        report_too_narrow(data.train, job.data, model.encoder.wstride)
    init_meta = None
    if init is not None:  # a resumed run reads it only for its description
        init_meta = (checkpoint.load_encoder(model.encoder, job.finetune.init_from, init)
                     if resume is None else init)
        fresh = sorted({k.rsplit(".", 2)[0] for k in model.state_dict()
                        if not k.startswith("encoder.")})
        log.info("starting fresh (not in the encoder checkpoint): %s", ", ".join(fresh))
    if job.finetune.mode == "frozen":
        if not job.finetune.init_from:
            log.warning("finetune.mode=frozen without finetune.init_from trains a decoder on "
                        "a random encoder")
        freeze(model.encoder)

    train_loader = make_loader(data.train, alphabet, job.data, True, job.trainer.seed,
                               dist.rank, dist.world)
    val_loader = make_loader(data.val, alphabet, job.data, False) if data.val else None
    if val_loader is None:
        log.warning("no validation samples: best.pt will not be selected by CER")

    trained, loss = (model, recognizer_loss) if job.finetune.aux is None else (
        joint_model(job, model, data.pool, dist), joint_loss)

    def validate(_: nn.Module) -> dict[str, float]:  # the recognizer, whatever trains
        return evaluate(model, val_loader, alphabet, DecodeConfig(), job.metric)[0]

    meta = {"kind": "recognizer", "alphabet": alphabet.to_dict(),
            "model_config": asdict(job.model), "config": job.config, "options": options}
    result = fit(trained, loss, train_loader, job.trainer, run_dir,
                 validate if val_loader else None, resume, meta, dist, job.finetune.groups())
    summary = TrainSummary(dist.is_main, result.step, best_val=result.best_metrics,
                           skipped_steps=result.skipped_steps,
                           skipped_samples=result.skipped_samples)
    if dist.is_main and data.test:
        best = result.best_path or result.last_path
        trained.load_state_dict(checkpoint.load(best)["model"])
        metrics, rows = evaluate(model, make_loader(data.test, alphabet, job.data, False),
                                 alphabet, DecodeConfig(), job.metric)
        metrics.update(split="test", checkpoint=str(best), labeled_lines=len(data.train),
                       run=describe_run(job, init_meta))
        write_results(run_dir, metrics, rows)
        summary.test = metrics
    if dist.is_main:
        checkpoint.mark_done(run_dir, {"step": result.step, "stopped_early": result.stopped_early})
    return summary


def joint_model(job: TrainJob, recognizer: Recognizer, pool: list[Sample], dist: DistInfo
                ) -> JointModel:
    """The recognizer with `finetune.aux` alongside, fed the training split's images (`pool`,
    texts unread) with the pretraining's aligned augmentation."""
    ft = job.finetune
    pretext = build_pretext(ft.aux, ft.aux_config(), recognizer.encoder)
    data = replace(job.data, augment=replace(job.data.augment, recipe="seqclr"))
    loader = make_loader(cached_crops(pool, data), None, data, True, job.trainer.seed,
                         dist.rank, dist.world, pretext.views)
    log.info("training %s alongside (weight %g) on %d images of the training split",
             ft.aux, ft.aux_weight, len(pool))
    return JointModel(recognizer, AuxTask(pretext, ft.aux_weight, loader))


def finished_summary(run_dir: Path, main: bool) -> TrainSummary:
    """What a skipped, already finished run reports: its step and saved test metrics."""
    log.info("%s already finished (%s exists): skipped", run_dir, run_dir / checkpoint.DONE)
    done = json.loads((run_dir / checkpoint.DONE).read_text(encoding="utf-8") or "{}")
    test = None
    if (run_dir / "metrics.json").is_file():
        test = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return TrainSummary(main, int(done.get("step", 0)), test, finished=True)


def too_narrow(samples: list[Sample], height: int, max_width: int | None,
               wstride: int) -> list[tuple[str, int, int]]:
    """(id, frames, frames needed) of every sample with too few CTC frames for its text.

    The width comes from the image header (as scaled to `height`), so augmentation can move
    a borderline line a frame either way.
    """
    out = []
    for s in samples:
        aspect = s.aspect()
        if not aspect:
            continue
        width = max(1, round(aspect * height))
        width = min(width, max_width) if max_width else width
        frames = -(-width // wstride)
        needed = len(s.text) + sum(a == b for a, b in zip(s.text, s.text[1:], strict=False))
        if frames < needed:
            out.append((s.id, frames, needed))
    return out


def report_too_narrow(samples: list[Sample], cfg: DataConfig, wstride: int) -> int:
    """Warn, before training, about lines CTC cannot align: they are left out of the loss."""
    bad = too_narrow(samples, cfg.height, cfg.max_width, wstride)
    if bad:
        shown = ", ".join(f"{sid} ({f} frames, needs {n})" for sid, f, n in bad[:5])
        log.warning(
            "%d of %d training lines are too narrow for their transcription under CTC "
            "(at data.height=%d the encoder gives one frame per %d px): %s. They are left out "
            "of the CTC loss and counted. Fix: check those images and transcriptions, raise "
            "data.height, or use decoder=attention", len(bad), len(samples), cfg.height,
            wstride, shown)
    return len(bad)
