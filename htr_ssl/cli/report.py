"""htr-ssl-report DIR: results tables and a plot from a folder of runs (configs/report.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from htr_ssl.cli._config import command
from htr_ssl.eval.report import collect_runs, full_markdown, metric_tables, write_report


def metric_names(option: Any) -> list[str]:
    """`metric=cer` or `metric=[cer,wer,wacc]` -> a list of names."""
    if isinstance(option, str):
        return [option]
    return [str(m) for m in option]


@command("report", "htr-ssl-report", positional="dir")
def main(cfg: DictConfig) -> None:
    root = Path(cfg.dir)
    records = collect_runs(root, cfg.split, cfg.include_eval)
    if not records:
        raise ValueError(f"no runs under {root}: found no metrics.json with a 'run' "
                         f"description scored on split {cfg.split!r} (htr-ssl-train "
                         "writes one into every run folder that has a test split)")
    metrics = metric_names(cfg.metric)
    tables = metric_tables(records, metrics, cfg.digits)
    if not tables:
        raise ValueError(f"none of the {len(records)} runs under {root} has the metric(s) "
                         f"{', '.join(metrics)}")
    out = Path(cfg.out) if cfg.out else root / "report"
    paths = write_report(tables, out, cfg.plot, records)
    print(f"{len(records)} runs under {root}\n")
    print(full_markdown(tables, records))
    print("written: " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
