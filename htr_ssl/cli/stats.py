"""htr-ssl-stats: print a dataset's per-split statistics (configs/stats.yaml)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from htr_ssl.cli._config import fail, quiet_logging, to_dataclass, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.pipeline import DataConfig, load_samples
from htr_ssl.data.stats import format_table, sample_stats


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="stats")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    try:
        data = to_dataclass(DataConfig, cfg.data)
        samples = load_samples(data)
    except user_errors() as err:
        fail(err)
    print(f"{data.name} at {data.root}")
    print(format_table(sample_stats(samples, widths=cfg.widths)))


if __name__ == "__main__":
    main()
