"""One cell of a start x dataset x label fraction x protocol sweep: prepare the start, fine-tune.

A start is a chain of stages, each continuing the encoder of the one before: a pretext
pretraining on unlabeled images, or supervised training on the built-in synthetic handwriting.
A sweep launches one job per cell; cells of the same start and dataset share its stage folders:
the first cell that needs a stage trains it (under a file lock, so parallel launchers wait
instead of training it twice), later cells find it finished and only fine-tune. A cell whose
fine-tuning already wrote `done` is skipped, so a sweep started again only runs what is
missing; an interrupted run continues from its `last.pt`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from htr_ssl.data.synthetic import GenerateConfig
from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.finetune import TrainJob, TrainSummary, train_recognizer
from htr_ssl.train.pretrain import PretrainJob, ensure_generated, pretrain

log = logging.getLogger(__name__)

SCRATCH = "scratch"
SYNTHETIC = "synthetic"  # a stage: supervised training on the built-in synthetic lines
SYNTHETIC_IMAGES = "synimg"  # in a pretext stage: the synthetic images join the unlabeled pool


@dataclass
class Stage:
    """One step of a start. `generate`: the synthetic data it reads, written first if missing."""

    job: PretrainJob | TrainJob
    generate: GenerateConfig | None = None


@dataclass
class Cell:
    """`stages` is empty for the from-scratch baseline."""

    method: str
    finetune: TrainJob
    stages: Sequence[Stage] = field(default_factory=list)


def parse_method(method: str) -> list[list[str]]:
    """"synthetic/masked+flip" -> [["synthetic"], ["masked", "flip"]]; "scratch" -> [].

    Stages are separated by "/", the pretexts trained together in one stage by "+"."""
    if method == SCRATCH:
        return []
    stages = [[t for t in part.split("+") if t] for part in method.split("/")]
    for tokens in stages:
        if not tokens:
            raise ValueError(f"method={method!r} has an empty stage; write stages as a/b and "
                             "pretexts trained together as a+b")
        if SYNTHETIC in tokens and len(tokens) > 1:
            raise ValueError(f"method={method!r}: '{SYNTHETIC}' (supervised training on the "
                             "synthetic lines) is a stage of its own; to add the synthetic "
                             f"images to a pretext's pool write '{SYNTHETIC_IMAGES}', e.g. "
                             f"masked+{SYNTHETIC_IMAGES}")
        if tokens == [SYNTHETIC_IMAGES]:
            raise ValueError(f"method={method!r}: '{SYNTHETIC_IMAGES}' adds images to a "
                             "pretext stage; name a pretext too, e.g. masked+synimg")
    return stages


def ensure_stage(stage: Stage, init: Path | None) -> Path:
    """The checkpoint of `stage` (continuing the encoder of `init`), trained only if needed."""
    if stage.generate is not None:
        ensure_generated(stage.generate)
    job = stage.job
    run_dir = Path(job.run_dir)
    with rundir.locked(run_dir, wait=True):  # a second launcher waits, then finds it done
        if (run_dir / checkpoint.DONE).is_file():
            log.info("stage in %s is finished: reused", run_dir)
        elif isinstance(job, PretrainJob):
            pretrain(replace(job, resume="auto", init_from=str(init) if init else None))
        else:
            init_from = str(init) if init else None
            train_recognizer(replace(job, resume="auto",
                                     finetune=replace(job.finetune, init_from=init_from)))
    best = run_dir / "best.pt"
    return best if best.is_file() else run_dir / "last.pt"


def run_cell(cell: Cell, on_start: Callable[[], None] | None = None) -> TrainSummary:
    """Prepare the start if needed, then fine-tune; returns the fine-tuning summary (or a note
    saying why the cell was skipped). `on_start` is called once the fine-tuning run is
    accepted (see train_recognizer)."""
    job = cell.finetune
    run_dir = Path(job.run_dir)
    if (run_dir / checkpoint.DONE).is_file():
        log.info("%s is finished: skipped", run_dir)
        return TrainSummary(True, 0, skipped="finished")
    if not cell.stages and job.finetune.mode == "frozen":
        log.warning("%s: the frozen protocol needs a pretrained encoder; skipped", run_dir)
        return TrainSummary(True, 0, skipped="frozen scratch")
    encoder = None
    for stage in cell.stages:
        encoder = ensure_stage(stage, encoder)
    if encoder is not None:
        job = replace(job, finetune=replace(job.finetune, init_from=str(encoder)))
    return train_recognizer(replace(job, resume="auto", method=job.method or cell.method),
                            on_start)
