"""`make demo`: synthetic data -> pretraining -> fine-tuning at two label fractions -> table,
plot and heat maps, all under one folder. Sized for a 2-core CPU: about 8.5 minutes, under 10
from a fresh clone with the install (README, Measured)."""

from __future__ import annotations

import time
from pathlib import Path

from hydra import compose
from omegaconf import DictConfig

from htr_ssl.cli._config import command, to_dataclass
from htr_ssl.cli.experiment import stages
from htr_ssl.cli.train import job_from_config
from htr_ssl.data.pipeline import DataConfig, load_samples
from htr_ssl.data.splits import select
from htr_ssl.data.stats import format_table
from htr_ssl.data.synthetic import GenerateConfig, generate
from htr_ssl.eval.heatmap_report import write_heatmaps
from htr_ssl.eval.heatmaps import load_subject
from htr_ssl.eval.report import (
    collect_runs,
    labels_header,
    metric_tables,
    to_markdown,
    write_report,
)
from htr_ssl.train.experiment import Cell, run_cell

DATASET = "synthetic"


RECOMMENDED = "recommended"  # in `methods`: the pretraining htr-ssl-pretrain runs by default


def recommended_method() -> str:
    """The default pretext(s) of configs/pretrain.yaml, as a method name ("masked", "a+b").
    Its `synimg=auto` adds nothing here: the demo's data is the synthetic handwriting."""
    return "+".join(compose("pretrain").pretext)


def resolve_methods(methods: list[str]) -> list[str]:
    return [recommended_method() if m == RECOMMENDED else str(m) for m in methods]


def verdict(tables: list, method: str, labels: list[float]) -> str:
    """One plain sentence per label fraction: did the recommended start beat scratch here?"""
    cer = next((t for t in tables if t.metric == "cer"), None)
    lines = []
    for column in (cer.columns if cer else []):
        mine, base = cer.cell(method, column), cer.cell("scratch", column)
        if mine is None or base is None:
            continue
        better = mine.mean < base.mean
        lines.append(f"{labels_header(column[1])} of the labels: {method} CER {mine.mean:.1f} "
                     f"vs scratch {base.mean:.1f}: pretraining "
                     + ("helped" if better else "did NOT help") + " at this budget")
    return "\n".join(lines) + (
        "\n(one seed on synthetic words, minutes of training: a smoke test of the workflow. "
        "Whether pretraining pays off on real handwriting, with 3 seeds and its spread, is "
        "measured in docs/results.md.)")


def cell_config(cfg: DictConfig, out: Path, method: str, labels: float) -> DictConfig:
    """The htr-ssl-experiment config of one cell, with the demo's folder layout."""
    run_dir = out / DATASET / method / "full" / f"labels_{labels}" / "seed_0"
    return compose("experiment", overrides=[
        f"method={method}", f"data.labels={labels}", f"root={out}", f"dataset={DATASET}",
        f"run_dir={run_dir}", f"data.root={cfg.generate.out_dir}", *cfg.cell])


def ensure_data(gen: GenerateConfig) -> None:
    if (Path(gen.out_dir) / "ascii" / "lines.txt").exists():
        print(f"[data] synthetic handwriting already in {gen.out_dir} (delete it to regenerate)")
        return
    print(f"[data] generating synthetic handwriting into {gen.out_dir}")
    print(format_table(generate(gen)))


def run_cells(cfg: DictConfig, out: Path) -> Path:
    """Every method x fraction; returns a 5 %-labels cell config (for the heat-map samples)."""
    cells = [(m, float(f)) for m in resolve_methods(cfg.methods) for f in cfg.labels]
    last = None
    for k, (method, labels) in enumerate(cells, 1):
        ccfg = cell_config(cfg, out, method, labels)
        start = time.perf_counter()
        print(f"\n[{k}/{len(cells)}] {method}, {labels:.0%} of the labels"
              + (" (pretraining first, once per method)" if method != "scratch" else ""))
        summary = run_cell(Cell(method, job_from_config(ccfg), stages(ccfg)))
        test = summary.test
        if test:
            print(f"      test WAcc {test['wacc']:.2f}  CER {test['cer']:.2f}  "
                  f"({time.perf_counter() - start:.0f} s)")
        last = ccfg
    return last


def heatmaps(cfg: DictConfig, out: Path, ccfg: DictConfig) -> list[Path]:
    """Grad-CAM / feature-norm maps of each method's lowest-label model on a few test samples."""
    data = to_dataclass(DataConfig, ccfg.data)
    test = select(load_samples(data), "test")[: int(cfg.heatmap_lines)]
    low = min(float(f) for f in cfg.labels)
    subjects = [load_subject(out / DATASET / m / "full" / f"labels_{low}" / "seed_0" / "best.pt",
                             m) for m in resolve_methods(cfg.methods)]
    return write_heatmaps(subjects, test, out / "heatmaps")


@command("demo", "python -m htr_ssl.cli.demo")
def main(cfg: DictConfig) -> None:
    out = Path(cfg.out)
    t0 = time.perf_counter()
    ensure_data(to_dataclass(GenerateConfig, cfg.generate))
    ccfg = run_cells(cfg, out)
    records = collect_runs(out)
    tables = metric_tables(records, ["wacc", "cer"])
    paths = write_report(tables, out / "report", records=records)
    sheets = heatmaps(cfg, out, ccfg)
    print(f"\nTest split, {time.perf_counter() - t0:.0f} s in all:\n")
    print(to_markdown(tables))
    print(verdict(tables, recommended_method(), list(cfg.labels)) + "\n")
    print("table:    " + ", ".join(str(p) for p in paths.values()))
    print("heatmaps: " + ", ".join(str(p) for p in sheets))
    print(f"\neverything is in {out}")


if __name__ == "__main__":
    main()
