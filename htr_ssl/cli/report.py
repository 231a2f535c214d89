"""htr-ssl-report DIR: results tables and a plot from a folder of runs (configs/report.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from htr_ssl.cli._config import fail, quiet_logging, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.eval.report import collect_runs, full_markdown, metric_tables, write_report


def metric_names(option: Any) -> list[str]:
    """`metric=cer` or `metric=[cer,wer,wacc]` -> a list of names."""
    if isinstance(option, str):
        return [option]
    return [str(m) for m in option]


def positional_dir(argv: list[str]) -> list[str]:
    """`htr-ssl-report DIR ...` -> `htr-ssl-report dir=DIR ...` (Hydra only takes key=value)."""
    if len(argv) > 1 and "=" not in argv[1] and not argv[1].startswith("-"):
        quoted = "'" + argv[1].replace("\\", "\\\\").replace("'", "\\'") + "'"
        return [argv[0], f"dir={quoted}", *argv[2:]]
    return argv


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="report")
def _main(cfg: DictConfig) -> None:
    quiet_logging()
    try:
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
    except user_errors() as err:
        fail(err)
    print(f"{len(records)} runs under {root}\n")
    print(full_markdown(tables, records))
    print("written: " + ", ".join(str(p) for p in paths.values()))


def main() -> None:
    sys.argv = positional_dir(sys.argv)
    _main()


if __name__ == "__main__":
    main()
