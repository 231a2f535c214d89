"""htr-ssl-pretrain: self-supervised pretraining of the encoder (configs/pretrain.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from htr_ssl.cli._config import (
    command,
    hydra_record,
    resolved,
    resume_and_run_dir,
    to_dataclass,
)
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.registry import chosen_pretexts
from htr_ssl.train.pretrain import PretrainJob, pretrain
from htr_ssl.train.trainer_config import TrainerConfig


def job_from_config(cfg: DictConfig) -> PretrainJob:
    """`cfg.pretext` holds one node per chosen pretext (`pretext=[rotation,seqclr]`): its
    options and its loss weight."""
    pretexts, weights = chosen_pretexts(resolved(cfg).get("pretext", {}))
    resume, run_dir = resume_and_run_dir(cfg)
    return PretrainJob(
        data=to_dataclass(DataConfig, cfg.data),
        encoder=to_dataclass(EncoderConfig, cfg.model),
        pretexts=pretexts,
        weights=weights,
        trainer=to_dataclass(TrainerConfig, cfg.trainer),
        run_dir=run_dir,
        splits=(str(cfg.splits),) if isinstance(cfg.splits, str) else tuple(cfg.splits),
        val_batches=int(cfg.val_batches),
        resume=resume,
        config=resolved(cfg),
        fork=bool(cfg.get("fork", False)),
    )


@command("pretrain", "htr-ssl-pretrain")
def main(cfg: DictConfig) -> None:
    job = job_from_config(cfg)
    summary = pretrain(job, hydra_record(cfg))
    if not summary.main:  # other torchrun ranks stay quiet
        return
    if summary.finished:
        print(f"\npretraining in {job.run_dir} had already finished: skipped (resume=auto)")
    else:
        shown = "  ".join(f"{k} {v:.3f}" for k, v in summary.best_val.items())
        print(f"\npretrained {summary.method} for {summary.step} steps: {job.run_dir}")
        if shown:
            print(f"best validation: {shown}")
    print(f"fine-tune with: htr-ssl-train finetune.init_from={summary.best or summary.last}")


if __name__ == "__main__":
    main()
