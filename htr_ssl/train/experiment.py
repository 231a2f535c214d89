"""One cell of a pretext x dataset x label fraction x protocol sweep: pretrain once, fine-tune.

A sweep launches one job per cell. Cells of the same method and dataset share one pretraining
run folder: the first cell that needs it trains it (under a file lock, so parallel launchers
wait instead of training it twice), later cells find it finished and only fine-tune. A cell
whose fine-tuning already wrote `metrics.json` is skipped, so a sweep started again only runs
what is missing; an interrupted run continues from its `last.pt`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.finetune import FinetuneConfig, TrainJob, train_recognizer
from htr_ssl.train.pretrain import PretrainJob, pretrain

log = logging.getLogger(__name__)

SCRATCH = "scratch"


@dataclass
class Cell:
    """`pretrain` is None for the from-scratch baseline."""

    method: str
    finetune: TrainJob
    pretrain: PretrainJob | None = None


def methods(method: str) -> list[str]:
    """"rotation+seqclr" -> ["rotation", "seqclr"]; "scratch" -> []."""
    return [] if method == SCRATCH else [m for m in method.split("+") if m]


def ensure_pretrained(job: PretrainJob) -> Path:
    """The pretraining checkpoint for `job`, training (or finishing) it only if needed."""
    run_dir = Path(job.run_dir)
    with rundir.locked(run_dir, wait=True):  # a second launcher waits, then finds it done
        if (run_dir / checkpoint.DONE).is_file():
            log.info("pretraining in %s is finished: reused", run_dir)
        else:
            pretrain(replace(job, resume="auto"))
    best = run_dir / "best.pt"
    return best if best.is_file() else run_dir / "last.pt"


def run_cell(cell: Cell, on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Pretrain if needed, then fine-tune; returns the fine-tuning summary (or a skip note).
    `on_start` is called once the fine-tuning run is accepted (see train_recognizer)."""
    job = cell.finetune
    run_dir = Path(job.run_dir)
    if (run_dir / checkpoint.DONE).is_file():
        log.info("%s is finished: skipped", run_dir)
        return {"main": True, "skipped": "finished", "run_dir": str(run_dir)}
    if cell.pretrain is None and job.finetune.mode == "frozen":
        log.warning("%s: the frozen protocol needs a pretrained encoder; skipped", run_dir)
        return {"main": True, "skipped": "frozen scratch", "run_dir": str(run_dir)}
    if cell.pretrain is not None:
        encoder = ensure_pretrained(cell.pretrain)
        job = replace(job, finetune=FinetuneConfig(str(encoder), job.finetune.mode))
    return train_recognizer(replace(job, resume="auto"), on_start)  # an interrupted cell continues
