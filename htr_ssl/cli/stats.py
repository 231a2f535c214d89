"""htr-ssl-stats: print a dataset's per-split statistics (configs/stats.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from htr_ssl.cli._config import command, to_dataclass
from htr_ssl.data.pipeline import DataConfig, load_samples
from htr_ssl.data.stats import format_table, sample_stats


@command("stats", "htr-ssl-stats")
def main(cfg: DictConfig) -> None:
    data = to_dataclass(DataConfig, cfg.data)
    samples = load_samples(data)
    print(f"{data.name} at {data.root}")
    print(format_table(sample_stats(samples, widths=cfg.widths)))


if __name__ == "__main__":
    main()
