"""Supervised training and fine-tuning of a recognizer, from data config to test metrics.

One function serves the from-scratch baseline (no `init_from`), fine-tuning of a pretrained
encoder (`mode=full`) and decoder evaluation (`mode=frozen`: the encoder's weights and batch
norm statistics stay as pretrained; only the decoder trains).
"""

from __future__ import annotations

import logging
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.pipeline import DataConfig, make_loader, prepare
from htr_ssl.eval.evaluate import DecodeConfig, evaluate, write_results
from htr_ssl.eval.metrics import MetricConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import Recognizer, RecognizerConfig, build_recognizer
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import init_from_env
from htr_ssl.train.loop import TrainerConfig, fit

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """`init_from`: any htr-ssl checkpoint whose encoder seeds this run (kraken's --load);
    `mode`: full | frozen."""

    init_from: str | None = None
    mode: str = "full"


@dataclass
class TrainJob:
    data: DataConfig
    model: RecognizerConfig
    trainer: TrainerConfig
    run_dir: Path
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    resume: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)


def freeze(module: nn.Module) -> None:
    """No gradients, and eval mode that `model.train()` cannot undo (frozen BN statistics)."""
    module.requires_grad_(False)
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: self, module)  # type: ignore


def recognizer_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Recognizer, Alphabet]:
    """Rebuild the recognizer (same architecture and weights) and alphabet a run saved."""
    if ckpt.get("kind") != "recognizer":
        raise checkpoint.CheckpointError(
            f"this checkpoint is a {ckpt.get('kind', 'unknown')!r} checkpoint, not a recognizer; "
            "fine-tune it first (htr-ssl-train finetune.init_from=...)")
    cfg = dict(ckpt["model_config"])
    model_cfg = RecognizerConfig(**{**cfg, "encoder": EncoderConfig(**cfg["encoder"])})
    alphabet = Alphabet.from_dict(ckpt["alphabet"])
    model = build_recognizer(model_cfg, alphabet)
    model.load_state_dict(ckpt["model"])
    return model, alphabet


def loss_fn(model: nn.Module, batch) -> tuple:
    return model.loss(batch.images, batch.widths, batch.targets, batch.target_lengths)


def train_recognizer(job: TrainJob) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation CER, and score it on the test split."""
    dist = init_from_env()
    run_dir = Path(job.run_dir)
    alphabet = None
    if job.resume is not None:
        alphabet = Alphabet.from_dict(checkpoint.load(job.resume)["alphabet"])
    data = prepare(job.data, run_dir if dist.is_main else None, alphabet)
    alphabet = data.alphabet
    if dist.is_main:
        alphabet.save(run_dir / "alphabet.json")
    torch.manual_seed(job.trainer.seed)  # weight init is part of the run's seed
    model = build_recognizer(job.model, alphabet)
    if job.finetune.init_from and job.resume is None:
        checkpoint.load_encoder(model.encoder, job.finetune.init_from)
    if job.finetune.mode == "frozen":
        if not job.finetune.init_from:
            log.warning("finetune.mode=frozen without finetune.init_from trains a decoder on "
                        "a random encoder")
        freeze(model.encoder)
    elif job.finetune.mode != "full":
        raise ValueError(f"finetune.mode={job.finetune.mode!r}; use full or frozen")

    train_loader = make_loader(data.train, alphabet, job.data, True, job.trainer.seed,
                               dist.rank, dist.world)
    val_loader = make_loader(data.val, alphabet, job.data, False) if data.val else None
    if val_loader is None:
        log.warning("no validation samples: best.pt will not be selected by CER")

    def validate(m: nn.Module) -> dict[str, float]:
        return evaluate(m, val_loader, alphabet, DecodeConfig(), job.metric)[0]

    meta = {"kind": "recognizer", "alphabet": alphabet.to_dict(),
            "model_config": asdict(job.model), "config": job.config}
    result = fit(model, loss_fn, train_loader, job.trainer, run_dir,
                 validate if val_loader else None, job.resume, meta, dist)
    summary: dict[str, Any] = {"main": dist.is_main, "step": result.step,
                               "best_val": result.best_metrics,
                               "skipped_steps": result.skipped_steps,
                               "skipped_samples": result.skipped_samples}
    if dist.is_main and data.test:
        best = result.best_path or result.last_path
        model.load_state_dict(checkpoint.load(best)["model"])
        metrics, rows = evaluate(model, make_loader(data.test, alphabet, job.data, False),
                                 alphabet, DecodeConfig(), job.metric)
        metrics.update(split="test", checkpoint=str(best), labeled_lines=len(data.train))
        write_results(run_dir, metrics, rows)
        summary["test"] = metrics
    return summary
