"""Pretraining an encoder on unlabeled images with one or more pretexts.

Transcriptions are never read: samples are loaded as images only, so a folder of scans without
text works (`data=images`), and so do PAGE/ALTO lines a segmenter wrote without text. With
`splits=("auto",)` (htr-ssl-pretrain's default) a dataset without a split of its own is used
whole, less a `data.val_frac` share of lines for the validation loss; one with its own split
gives its training split, so its test lines never shape the encoder that is later scored on
them. A list of splits (`("train",)`, as the experiment uses) takes those splits of the usual
fallback split.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from htr_ssl.data.pipeline import (
    DataConfig,
    cached_crops,
    has_split,
    load_samples,
    make_loader,
    read_samples,
)
from htr_ssl.data.readers import read_dataset
from htr_ssl.data.splits import HOW_TO_CHOOSE, line_split, select, write_ids
from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.gather import local_batch
from htr_ssl.pretext.model import build_pretext_model, checkpoint_meta, loss_fn
from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.distributed import DistInfo, init_from_env
from htr_ssl.train.generated import ensure_generated
from htr_ssl.train.loop import fit
from htr_ssl.train.trainer_config import TrainerConfig

if TYPE_CHECKING:
    from htr_ssl.data.synthetic import GenerateConfig

log = logging.getLogger(__name__)

VAL_SEED = 12_345  # validation batches and their pretext transforms are the same every time
UNUSED_DATA = ("labels", "label_seed", "oov", "oov_map", "word_images")  # text-only options


@dataclass
class PretrainJob:
    """`pretexts` maps each pretext name to its config dataclass; `weights` to its loss weight."""

    data: DataConfig
    encoder: EncoderConfig
    pretexts: dict[str, Any]
    trainer: TrainerConfig
    run_dir: Path
    weights: dict[str, float] = field(default_factory=dict)
    splits: tuple[str, ...] = ("train",)  # or ("auto",): see the module docstring
    val_batches: int = 20
    resume: Path | str | None = None  # a checkpoint, or "auto" (continue / skip if done)
    config: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # a checkpoint whose encoder this pretraining continues
    extra: tuple[DataConfig, ...] = ()  # more unlabeled images: all of these datasets' images
    generate: GenerateConfig | None = None  # the synthetic set an `extra` reads: made if missing
    fork: bool = False  # continue `resume` in run_dir, a new folder, even with changed options


@dataclass
class PretrainSummary:
    """What a pretraining run reports back to its command."""

    main: bool  # the main process (under torchrun the others stay quiet)
    method: str  # the pretexts, "+"-joined
    last: Path
    best: Path | None  # best validation loss, when there was a validation split
    step: int | None = None  # None when it had finished before
    best_val: dict[str, float] = field(default_factory=dict)
    finished: bool = False  # it had finished before (resume=auto): nothing was trained


def unlabeled_splits(job: PretrainJob) -> tuple[list, list]:
    """(pretraining samples, validation samples), texts never read."""
    auto = tuple(job.splits) == ("auto",)
    bad = set(job.splits) - {"train", "val", "test"}
    if not auto and (bad or not job.splits):
        raise ValueError(f"splits={list(job.splits)}: give auto, or a list of splits from "
                         "train, val, test")
    if "test" in job.splits:
        log.warning("pretraining on the TEST split: scores on it are no longer unbiased")
    if auto:
        train, val = auto_split(job.data)
    else:
        samples = load_samples(job.data, unlabeled=True)
        train = [s for name in job.splits for s in select(samples, name)]
        val = select(samples, "val") if "val" not in job.splits else []
    if not train:
        raise ValueError(f"no samples in split(s) {list(job.splits)} of {job.data.name} at "
                         f"{job.data.root}. Fix: splits=auto pretrains on every image; "
                         f"otherwise choose the split yourself. {HOW_TO_CHOOSE}")
    train = cached_crops(train, job.data)
    for extra in job.extra:  # every image: they are only ever pretrained on
        more = read_dataset(extra.name, Path(extra.root), True, **extra.reader_args)
        if not more:
            raise ValueError(f"pretrain.extra {extra.name} at {extra.root} has no images")
        log.info("adding %d unlabeled images of %s (%s)", len(more), extra.name, extra.root)
        train += cached_crops(more, extra)
    return train, cached_crops(val, job.data)


def auto_split(data: DataConfig) -> tuple[list, list]:
    """splits=auto: every image less a validation share, or the dataset's own train/val."""
    samples = read_samples(data, unlabeled=True)
    if has_split(samples):
        log.info("%s has a split of its own: pretraining on its %d train images (its test "
                 "split stays unseen; splits=[train,val,test] takes everything)", data.name,
                 len(select(samples, "train")))
        return select(samples, "train"), select(samples, "val")
    samples = line_split(samples, data.val_frac, 0.0, data.split_seed)
    train, val = select(samples, "train"), select(samples, "val")
    log.info("pretraining on %d of %d images; %d (data.val_frac=%g) are kept for the "
             "validation loss", len(train), len(samples), len(val), data.val_frac)
    return train, val


def job_options(job: PretrainJob) -> dict[str, Any]:
    """What decides the data, model and schedule of a pretraining run, by option name; the
    label options are left out, since pretraining never reads a transcription."""
    data = {k: v for k, v in asdict(job.data).items() if k not in UNUSED_DATA}
    pretexts = {n: {**asdict(c), "weight": job.weights.get(n, 1.0)}
                for n, c in job.pretexts.items()}
    return {"data": data, "model": asdict(job.encoder), "pretext": pretexts,
            "trainer": asdict(job.trainer), "splits": list(job.splits),
            "val_batches": job.val_batches, "init_from": job.init_from,
            "extra": {e.root: e.name for e in job.extra}}


def pretrain(job: PretrainJob, on_start: Callable[[], None] | None = None) -> PretrainSummary:
    """Train the encoder; best.pt is chosen by the validation pretext loss when there is a
    validation split. Returns a summary with the final validation metrics. The run folder is
    locked while the run writes to it; `on_start` is called (on the main process) once the run
    is accepted, before any data is read."""
    dist = init_from_env()
    with rundir.locked(job.run_dir) if dist.is_main else contextlib.nullcontext():
        return _pretrain(job, dist, on_start)


def _pretrain(job: PretrainJob, dist: DistInfo, on_start: Callable[[], None] | None
              ) -> PretrainSummary:
    run_dir = Path(job.run_dir)
    options = job_options(job)
    resume, _ = rundir.begin(run_dir, job.resume, "pretext", options, job.fork, dist.is_main)
    if resume == checkpoint.FINISHED:
        log.info("pretraining in %s is finished: nothing to do (resume=auto)", run_dir)
        best = run_dir / "best.pt"
        return PretrainSummary(dist.is_main, "+".join(job.pretexts), run_dir / "last.pt",
                               best if best.is_file() else None, finished=True)
    if dist.is_main and on_start is not None:
        on_start()
    if job.generate is not None:
        ensure_generated(job.generate)
    train, val = unlabeled_splits(job)
    if dist.is_main:
        write_ids(train, run_dir / "pretrain_ids.tsv")
    torch.manual_seed(job.trainer.seed)
    encoder = build_encoder(job.encoder)
    if job.init_from and resume is None:  # a resumed run has it in its own weights
        checkpoint.load_encoder(encoder, job.init_from)
        log.info("pretraining continues the encoder of %s", job.init_from)
    model = build_pretext_model(job.encoder, job.pretexts, job.weights, encoder)
    views = model.views
    if views > 1 and job.data.augment.recipe == "none":
        raise ValueError(f"{model.method} contrasts augmented views: set data.augment.recipe "
                         "(seqclr keeps views aligned)")
    loader = make_loader(train, None, job.data, True, job.trainer.seed, dist.rank, dist.world,
                         views)
    log.info("pretraining %s on %d unlabeled images (%s), %d view(s) each", model.method,
             len(train), "+".join(job.splits), views)
    validate = None
    if val:
        val_loader = make_loader(val, None, job.data, True, VAL_SEED, views=views)

        def validate(m: nn.Module) -> dict[str, float]:
            return pretext_metrics(m, val_loader, job.val_batches)

    meta = {**checkpoint_meta(model), "data_config": asdict(job.data), "config": job.config,
            "options": options}
    trainer = job.trainer
    if trainer.monitor == "cer":  # the recognizer default; a pretext is judged by its loss
        trainer = TrainerConfig(**{**asdict(trainer), "monitor": "loss", "monitor_mode": "min"})
    result = fit(model, loss_fn, loader, trainer, run_dir, validate, resume, meta, dist)
    if dist.is_main:
        checkpoint.mark_done(run_dir, {"step": result.step, "method": model.method})
    return PretrainSummary(dist.is_main, model.method, result.last_path, result.best_path,
                           result.step, result.best_metrics)


def pretext_metrics(model: nn.Module, loader, max_batches: int) -> dict[str, float]:
    """Mean loss and pretext metrics over up to `max_batches` validation batches, with the
    random pretext transforms seeded so every validation sees the same task. Under torchrun
    only rank 0 validates: contrastive pretexts contrast within its batches alone."""
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    n = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            local_batch():
        torch.manual_seed(VAL_SEED)
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            loss, metrics = model(batch.to(device))
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
    return {k: v / max(n, 1) for k, v in sums.items()}
