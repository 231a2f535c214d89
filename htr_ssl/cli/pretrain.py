"""htr-ssl-pretrain: self-supervised pretraining of the encoder (configs/pretrain.yaml)."""

from __future__ import annotations

from dataclasses import replace

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from htr_ssl.cli._config import (
    command,
    hydra_record,
    resolved,
    resume_and_run_dir,
    to_dataclass,
)
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.synthetic import GenerateConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.registry import chosen_pretexts
from htr_ssl.train.pretrain import PretrainJob, pretrain
from htr_ssl.train.trainer_config import TrainerConfig


def synthetic_data(cfg: DictConfig) -> tuple[DataConfig, GenerateConfig]:
    """The built-in synthetic handwriting as `cfg.synthetic` configures it
    (configs/synthetic/lines.yaml), and how to make it."""
    return (to_dataclass(DataConfig, cfg.synthetic.data),
            to_dataclass(GenerateConfig, cfg.synthetic.generate))


def more_images(cfg: DictConfig, data: DataConfig, folders: list[str], synimg: bool
                ) -> tuple[tuple[DataConfig, ...], GenerateConfig | None]:
    """The unlabeled pools pretrained on besides `data`: every image of each folder, and with
    `synimg` the built-in synthetic lines of `cfg.synthetic` (no text), all read at `data`'s
    height with its augmentation; plus how to generate the synthetic ones when missing."""
    extra = tuple(replace(data, name="images", root=str(folder), reader_args={})
                  for folder in folders)
    if not synimg:
        return extra, None
    synth, gen = synthetic_data(cfg)
    return (*extra, replace(synth, augment=data.augment)), gen


def use_synimg(value: bool | str, data_choice: str | None) -> bool:
    """synimg=auto adds the synthetic images unless the data is the synthetic handwriting."""
    if isinstance(value, bool):
        return value
    if value != "auto":
        raise ValueError(f"synimg={value!r}: give auto, true or false")
    return data_choice != "synthetic"


def job_from_config(cfg: DictConfig) -> PretrainJob:
    """`cfg.pretext` holds one node per chosen pretext (`pretext=[rotation,seqclr]`): its
    options and its loss weight."""
    pretexts, weights = chosen_pretexts(resolved(cfg).get("pretext", {}))
    resume, run_dir = resume_and_run_dir(cfg)
    data = to_dataclass(DataConfig, cfg.data)
    choice = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    extra, gen = more_images(cfg, data, list(cfg.extra_images), use_synimg(cfg.synimg, choice))
    return PretrainJob(
        data=data,
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
        extra=extra,
        generate=gen,
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
