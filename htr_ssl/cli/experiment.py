"""htr-ssl-experiment: one sweep cell, its start's stages reused across cells
(configs/experiment.yaml).

Run many cells with Hydra's multirun (`-m`); `configs/experiment/*.yaml` hold the sweeps.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig

from htr_ssl.cli._config import (
    command,
    hydra_record,
    resolved,
    to_dataclass,
)
from htr_ssl.cli.pretrain import more_images, synthetic_data
from htr_ssl.cli.train import job_from_config, print_summary, recognizer_config
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.registry import chosen_pretexts
from htr_ssl.train.experiment import (
    SYNTHETIC,
    SYNTHETIC_IMAGES,
    Cell,
    Stage,
    parse_method,
    run_cell,
)
from htr_ssl.train.finetune import TrainJob
from htr_ssl.train.pretrain import PretrainJob
from htr_ssl.train.trainer_config import TrainerConfig


def pretrain_job(cfg: DictConfig, names: list[str], run_dir: Path) -> PretrainJob:
    """A pretext stage: `names` trained together on the unlabeled training images, plus every
    image in `pretrain.extra_images` and, when `synimg` is among the names, the synthetic ones."""
    pre = cfg.pretrain
    defaults = resolved(pre.pretexts)  # configs/pretext/*.yaml, on the pretraining trainer
    overrides = resolved(pre.pretext) if pre.pretext else {}
    pretexts, weights = chosen_pretexts(
        {name: {**defaults.get(name, {}), **overrides.get(name, {})}
         for name in names if name != SYNTHETIC_IMAGES}, "pretrain.pretext.")
    augment = to_dataclass(AugmentConfig, pre.augment)
    data = replace(to_dataclass(DataConfig, cfg.data), augment=augment)
    extra, gen = more_images(cfg, data, list(pre.extra_images), SYNTHETIC_IMAGES in names)
    return PretrainJob(data=data, encoder=to_dataclass(EncoderConfig, cfg.model),
                       pretexts=pretexts, weights=weights,
                       trainer=to_dataclass(TrainerConfig, pre.trainer), run_dir=run_dir,
                       splits=tuple(pre.splits), val_batches=int(pre.val_batches),
                       config=resolved(cfg), extra=extra, generate=gen)


def synthetic_job(cfg: DictConfig, run_dir: Path) -> TrainJob:
    """The supervised stage: the cell's recognizer trained on all the synthetic lines."""
    data, gen = synthetic_data(cfg)
    return TrainJob(data=data, model=recognizer_config(cfg),
                    trainer=to_dataclass(TrainerConfig, cfg.synthetic.trainer), run_dir=run_dir,
                    config=resolved(cfg), dataset=SYNTHETIC, method=SYNTHETIC, stage=True,
                    generate=gen)


def stages(cfg: DictConfig) -> list[Stage]:
    """The start's stages in order, each in a folder nested in the one before
    (<pretrain.dir>/synthetic/masked for method=synthetic/masked)."""
    parsed = parse_method(str(cfg.method))
    out = []
    for k, names in enumerate(parsed):
        run_dir = Path(cfg.pretrain.dir).joinpath(*["+".join(n) for n in parsed[: k + 1]])
        out.append(synthetic_job(cfg, run_dir) if names == [SYNTHETIC]
                   else pretrain_job(cfg, names, run_dir))
    return out


@command("experiment", "htr-ssl-experiment")
def main(cfg: DictConfig) -> None:
    finetune = job_from_config(cfg)
    cell = Cell(str(cfg.method), finetune, stages(cfg))
    summary = run_cell(cell, hydra_record(cfg))
    if summary.skipped:
        print(f"skipped ({summary.skipped}): {finetune.run_dir}")
    else:
        print_summary(summary, finetune.run_dir)


if __name__ == "__main__":
    main()
