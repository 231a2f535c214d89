"""htr-ssl-experiment: one sweep cell, pretraining reused across cells (configs/experiment.yaml).

Run many cells with Hydra's multirun (`-m`); `configs/experiment/*.yaml` hold the sweeps.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from htr_ssl.cli._config import (
    fail,
    hydra_record,
    quiet_logging,
    resolved,
    to_dataclass,
    user_errors,
)
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.cli.train import job_from_config, print_summary
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train.experiment import Cell, methods, run_cell
from htr_ssl.train.loop import TrainerConfig
from htr_ssl.train.pretrain import PretrainJob


def pretext_defaults(name: str, trainer: DictConfig) -> dict[str, Any]:
    """The options in configs/pretext/<name>.yaml (what `htr-ssl-pretrain pretext=<name>` uses),
    with `${trainer.*}` in them resolved against the pretraining trainer."""
    path = Path(CONFIG_DIR) / "pretext" / f"{name}.yaml"
    if not path.is_file():
        pretext_config(name)  # raises the error that lists the valid names
        raise ValueError(f"pretext {name!r} has no config file {path}")
    root = OmegaConf.create({"trainer": OmegaConf.to_container(trainer, resolve=True),
                             "pretext": OmegaConf.load(path)})
    return dict(OmegaConf.to_container(root.pretext, resolve=True))  # type: ignore[arg-type]


def pretrain_job(cfg: DictConfig) -> PretrainJob | None:
    names = methods(cfg.method)
    if not names:
        return None
    pre = cfg.pretrain
    overrides = resolved(pre.pretext) if pre.pretext else {}
    pretexts, weights = {}, {}
    for name in names:
        options = {**pretext_defaults(name, pre.trainer), **overrides.get(name, {})}
        weights[name] = float(options.pop("weight", 1.0))
        pretexts[name] = pretext_config(name, options)
    data = to_dataclass(DataConfig, cfg.data)
    data = replace(data, augment=to_dataclass(AugmentConfig, pre.augment))
    return PretrainJob(data=data, encoder=to_dataclass(EncoderConfig, cfg.model),
                       pretexts=pretexts, weights=weights,
                       trainer=to_dataclass(TrainerConfig, pre.trainer), run_dir=Path(pre.dir),
                       splits=tuple(pre.splits), val_batches=int(pre.val_batches),
                       config=resolved(cfg))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="experiment")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    try:
        finetune = job_from_config(cfg)
        cell = Cell(cfg.method, finetune, pretrain_job(cfg))
        summary = run_cell(cell, hydra_record(cfg))
    except user_errors() as err:
        fail(err)
    if summary.get("skipped"):
        print(f"skipped ({summary['skipped']}): {summary['run_dir']}")
    else:
        print_summary(summary, finetune.run_dir)


if __name__ == "__main__":
    main()
