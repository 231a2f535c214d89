"""Results tables and plots from a folder of fine-tuning runs (the SeqCLR paper's layout).

Every fine-tuning run writes `metrics.json` with a `run` description (method, dataset, label
fraction, protocol, seed; see `htr_ssl.train.finetune.describe_run`). A report gathers them,
groups runs that differ only by seed, and lays the test metric out as methods x (dataset x label
fraction), one table per protocol (full fine-tuning, frozen encoder = decoder evaluation).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# metric -> (display name, True when larger is better)
METRICS: dict[str, tuple[str, bool]] = {
    "wacc": ("WAcc", True),
    "wacc_caseless": ("WAcc (caseless)", True),
    "line_acc": ("line acc", True),
    "cer": ("CER", False),
    "wer": ("WER", False),
}
PROTOCOL_NAMES = {"full": "full fine-tuning", "frozen": "frozen encoder (decoder evaluation)"}
BASELINE = "scratch"


@dataclass(frozen=True)
class RunRecord:
    """One scored run: where it sits in the table and its test metrics."""

    path: Path
    method: str
    dataset: str
    labels: float  # a fraction in (0, 1] or a number of labeled lines (> 1)
    protocol: str
    seed: int
    metrics: dict[str, float] = field(hash=False, compare=False)
    encoder: str = ""
    decoder: str = ""
    pretext: dict[str, float] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Spread:
    """The metric over the seeds of one method x dataset x fraction (std is the sample std)."""

    mean: float
    std: float | None
    n: int
    best: bool = False


@dataclass
class Table:
    """One protocol's table: rows are methods, columns (dataset, labels) pairs."""

    metric: str
    protocol: str
    methods: list[str]
    columns: list[tuple[str, float]]
    cells: dict[tuple[str, tuple[str, float]], Spread]
    digits: int = 1

    def cell(self, method: str, column: tuple[str, float]) -> Spread | None:
        return self.cells.get((method, column))


def labels_header(labels: float) -> str:
    """0.05 -> "5 %", 1.0 -> "100 %", 250 -> "250 lines"."""
    if labels > 1:
        return f"{int(labels)} lines"
    return f"{labels * 100:.10g} %"


def _column_key(column: tuple[str, float]) -> tuple[str, bool, float]:
    dataset, labels = column
    return dataset, labels > 1, labels  # fractions first, then line counts


def _method_key(method: str) -> tuple[bool, str]:
    return method != BASELINE and not method.startswith(BASELINE + " "), method


# --- collecting --------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("skipping %s: not a readable JSON file (%s)", path, err)
        return None
    if not isinstance(data, dict):
        log.warning("skipping %s: expected a JSON object, found %s", path, type(data).__name__)
        return None
    return data


def _eval_descriptor(path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    """The run description of an `htr-ssl-eval` result: from the run folder of its checkpoint,
    with the decoding appended to the method ("scratch [ctc beam lex]")."""
    candidates = [path.parent.parent / "metrics.json"]
    if data.get("checkpoint"):
        candidates.insert(0, Path(data["checkpoint"]).parent / "metrics.json")
    for cand in candidates:
        parent = _read_json(cand) if cand.is_file() and cand != path else None
        if parent and isinstance(parent.get("run"), dict):
            decode = data.get("decode") or {}
            tags = [decode.get("head", "auto"), decode.get("method", "greedy")]
            tags += ["lex"] * bool(decode.get("lexicon")) + ["lm"] * bool(decode.get("lm"))
            run = dict(parent["run"])
            run["method"] = f"{run.get('method', '?')} [{' '.join(map(str, tags))}]"
            return run
    return None


def _record(path: Path, data: dict[str, Any], run: dict[str, Any]) -> RunRecord | None:
    if run.get("stage"):  # an experiment's intermediate stage (e.g. synthetic-supervised)
        return None
    missing = [k for k in ("method", "dataset", "labels", "protocol") if run.get(k) is None]
    if missing:
        log.warning("skipping %s: its 'run' description lacks %s", path, ", ".join(missing))
        return None
    metrics = {k: float(v) for k, v in data.items()
               if k in METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    try:
        labels = float(run["labels"])
        seed = int(run.get("seed") or 0)
    except (TypeError, ValueError):
        log.warning("skipping %s: 'run.labels' / 'run.seed' are not numbers (%r, %r)", path,
                    run.get("labels"), run.get("seed"))
        return None
    pretext = run.get("pretext") if isinstance(run.get("pretext"), dict) else {}
    pretext = {str(k): float(v) for k, v in pretext.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return RunRecord(path, str(run["method"]), str(run["dataset"]), labels,
                     str(run["protocol"]), seed, metrics, str(run.get("encoder") or ""),
                     str(run.get("decoder") or ""), pretext)


def collect_runs(root: Path | str, split: str = "test", include_eval: bool = False
                 ) -> list[RunRecord]:
    """Every `metrics.json` below `root` that describes a run scored on `split`.

    Unreadable files are skipped with a warning naming them. Files without a `run` description
    (`htr-ssl-eval` outputs) are left out and counted, unless `include_eval`: then they become
    rows of their own, named after the run's method plus the decoding they used.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give the folder that holds the runs "
                                "(e.g. runs/ or runs/sweep/X)")
    records: list[RunRecord] = []
    no_run = other_split = 0
    for path in sorted(root.rglob("metrics.json")):
        data = _read_json(path)
        if data is None:
            continue
        if data.get("split", split) != split:
            other_split += 1
            continue
        run = data.get("run")
        if run is not None and not isinstance(run, dict):
            log.warning("skipping %s: 'run' should be an object, found %r", path, run)
            continue
        if run is None:
            run = _eval_descriptor(path, data) if include_eval else None
            if run is None:
                no_run += 1
                continue
        record = _record(path, data, run)
        if record is not None:
            records.append(record)
    if no_run:
        log.info("left out %d metrics.json without a run description (htr-ssl-eval outputs; "
                 "include_eval=true adds those of known runs as rows of their own)", no_run)
    if other_split:
        log.info("left out %d metrics.json scored on another split than %s", other_split, split)
    return records


# --- tables ------------------------------------------------------------------------------------


def _row_names(records: Sequence[RunRecord]) -> dict[RunRecord, str]:
    """Method names, with "(encoder/decoder)" added when the runs mix architectures, so that
    different models are never averaged into one cell."""
    archs = {(r.encoder, r.decoder) for r in records}
    if len(archs) <= 1:
        return {r: r.method for r in records}
    return {r: f"{r.method} ({r.encoder}/{r.decoder})" for r in records}


def _aggregate(values: list[float]) -> tuple[float, float | None]:
    if len(values) == 1:
        return values[0], None
    return statistics.fmean(values), statistics.stdev(values)


def build_tables(records: Iterable[RunRecord], metric: str = "wacc", digits: int = 1
                 ) -> list[Table]:
    """One Table per protocol (full first, then frozen, then any other, by name)."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}; use one of {', '.join(METRICS)}")
    records = [r for r in records if metric in r.metrics and math.isfinite(r.metrics[metric])]
    names = _row_names(records)
    order = {"full": 0, "frozen": 1}
    protocols = sorted({r.protocol for r in records}, key=lambda p: (order.get(p, 2), p))
    return [build_table([r for r in records if r.protocol == p], metric, p, digits, names)
            for p in protocols]


def build_table(records: Iterable[RunRecord], metric: str, protocol: str, digits: int = 1,
                names: dict[RunRecord, str] | None = None) -> Table:
    """Methods x (dataset, labels) for one protocol. A cell is the mean and std over seeds;
    the best cell per column (min for cer/wer, max otherwise, compared as displayed) is marked.
    """
    records = [r for r in records if r.protocol == protocol and metric in r.metrics]
    names = names or _row_names(records)
    groups: dict[tuple[str, tuple[str, float]], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((names[r], (r.dataset, r.labels)), []).append(r)
    cells: dict[tuple[str, tuple[str, float]], Spread] = {}
    for key, runs in groups.items():
        seeds = [r.seed for r in runs]
        if len(set(seeds)) < len(seeds):
            log.warning("%s, %s, %s: several runs with the same seed are averaged: %s", key[0],
                        key[1][0], labels_header(key[1][1]), ", ".join(str(r.path) for r in runs))
        mean, std = _aggregate([r.metrics[metric] for r in runs])
        cells[key] = Spread(mean, std, len(runs))
    methods = sorted({m for m, _ in cells}, key=_method_key)
    columns = sorted({c for _, c in cells}, key=_column_key)
    higher = METRICS[metric][1]
    for col in columns:
        shown = {m: round(cells[(m, col)].mean, digits) for m in methods if (m, col) in cells}
        best = (max if higher else min)(shown.values())
        for m, v in shown.items():
            if v == best:
                c = cells[(m, col)]
                cells[(m, col)] = Spread(c.mean, c.std, c.n, best=True)
    return Table(metric, protocol, methods, columns, cells, digits)


def metric_tables(records: Sequence[RunRecord], metrics: Sequence[str], digits: int = 1
                  ) -> list[Table]:
    """`build_tables` for each metric in turn (e.g. CER, WER and WAcc side by side)."""
    return [t for m in metrics for t in build_tables(records, m, digits)]


def versus_baseline(table: Table) -> str:
    """How each method's cells compare with scratch's: the difference in the direction of
    "better" (positive = better than scratch) and, for lower-is-better metrics, the ratio
    to scratch. A difference counts ("yes") only where it exceeds the two cells' standard
    deviations added together; with a single seed there is no spread and it says "1 seed"."""
    if BASELINE not in table.methods:
        return ""
    higher = METRICS[table.metric][1]
    header = ["method"] + [f"{d} {labels_header(n)}" for d, n in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(table.columns) + "|"]
    for m in table.methods:
        if m == BASELINE:
            continue
        row = [_md_escape(m)]
        for col in table.columns:
            c, b = table.cell(m, col), table.cell(BASELINE, col)
            if c is None or b is None:
                row.append("")
                continue
            gain = (c.mean - b.mean) if higher else (b.mean - c.mean)
            text = f"{gain:+.{table.digits}f}"
            if not higher and b.mean > 0:
                text += f" (x{c.mean / b.mean:.2f})"
            if c.std is None or b.std is None:
                text += ", 1 seed"
            else:
                text += ", yes" if abs(gain) > c.std + b.std else ", within spread"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return (f"#### {title(table)}: difference to scratch\n\n" + "\n".join(lines) + "\n")


def pretext_summary(records: Sequence[RunRecord], digits: int = 1) -> str:
    """Each pretrained method's own task at its best validation (`acc` next to `chance`), so a
    transfer figure is never read without knowing whether the pretext was learned at all."""
    rows: dict[str, dict[str, float]] = {}
    for r in records:
        if r.pretext:
            rows.setdefault(r.method, r.pretext)
    if not rows:
        return ""
    lines = ["| method | pretext task (validation, best checkpoint) |", "|---|---|"]
    for method in sorted(rows, key=_method_key):
        m = rows[method]
        parts = []
        for key in sorted(k for k in m if k.endswith("/acc")):
            name = key[: -len("/acc")]
            chance = m.get(f"{name}/chance")
            parts.append(f"{name} acc {m[key]:.{digits}f} %"
                         + (f" (chance {chance:.{digits}f} %)" if chance is not None else ""))
        if not parts and "loss" in m:
            parts.append(f"loss {m['loss']:.3f}")
        lines.append(f"| {_md_escape(method)} | {'; '.join(parts)} |")
    return "### Pretext tasks\n\n" + "\n".join(lines) + "\n"


def format_cell(cell: Spread | None, digits: int, pm: str = " ± ") -> str:
    if cell is None:
        return ""
    text = f"{cell.mean:.{digits}f}"
    return text + (f"{pm}{cell.std:.{digits}f}" if cell.std is not None else "")


def title(table: Table) -> str:
    name, higher = METRICS[table.metric]
    arrow = "higher" if higher else "lower"
    protocol = PROTOCOL_NAMES.get(table.protocol, table.protocol)
    return f"{protocol}: test {name} (%), {arrow} is better"


# --- writers -----------------------------------------------------------------------------------


def to_markdown(tables: Sequence[Table]) -> str:
    """One pipe table per protocol under a heading; best cells in bold, missing runs empty."""
    parts = []
    for t in tables:
        header = ["method"] + [f"{d} {labels_header(n)}" for d, n in t.columns]
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(t.columns) + "|"]
        for m in t.methods:
            cells = []
            for col in t.columns:
                c = t.cell(m, col)
                text = format_cell(c, t.digits)
                cells.append(f"**{text}**" if c is not None and c.best else text)
            lines.append("| " + " | ".join([_md_escape(m), *cells]) + " |")
        parts.append(f"### {title(t)}\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


CSV_HEADER = ("protocol", "method", "dataset", "labels", "column", "metric", "mean", "std",
              "seeds", "best")


def to_csv(tables: Sequence[Table]) -> str:
    """Long format, one row per filled cell (missing runs have no row): std is empty for a
    single seed; `best` is `*` for the best value of its column within its protocol."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for t in tables:
        for m in t.methods:
            for col in t.columns:
                c = t.cell(m, col)
                if c is None:
                    continue
                std = "" if c.std is None else f"{c.std:.4f}"
                w.writerow([t.protocol, m, col[0], f"{col[1]:g}", labels_header(col[1]),
                            t.metric, f"{c.mean:.4f}", std, c.n, "*" if c.best else ""])
    return buf.getvalue()


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _TEX_ESCAPES[m.group()], text)


def to_latex(tables: Sequence[Table]) -> str:
    """One booktabs tabular (needs \\usepackage{booktabs}): datasets as column groups, label
    fractions below them, one row group per protocol; best cells in bold."""
    columns = sorted({c for t in tables for c in t.columns}, key=_column_key)
    datasets = list(dict.fromkeys(d for d, _ in columns))
    ncol = 1 + len(columns)
    out = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule"]
    groups, rules, start = [""], [], 2
    for d in datasets:
        span = sum(1 for c in columns if c[0] == d)
        groups.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(d)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
        start += span
    out += [" & ".join(groups) + r" \\", " ".join(rules)]
    out.append(" & ".join(["Method"] + [tex_escape(labels_header(n)).replace(" ", r"\,")
                                        for _, n in columns]) + r" \\")
    for t in tables:
        out.append(r"\midrule")
        if len(tables) > 1:
            out.append(rf"\multicolumn{{{ncol}}}{{l}}{{\emph{{{tex_escape(title(t))}}}}} \\")
        for m in t.methods:
            row = [tex_escape(m)]
            for col in columns:
                c = t.cell(m, col)
                text = format_cell(c, t.digits, pm=r" $\pm$ ")
                row.append(rf"\textbf{{{text}}}" if c is not None and c.best else text)
            out.append(" & ".join(row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    caption = "" if len(tables) != 1 else f"% {title(tables[0])}\n"
    return caption + "\n".join(out) + "\n"


def plot(tables: Sequence[Table], path: Path | str) -> Path:
    """The metric against the label fraction, one line per method, one panel per protocol x
    dataset; error bars (std over seeds) where several seeds exist."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(t, d) for t in tables for d in dict.fromkeys(d for d, _ in t.columns)]
    if not panels:
        raise ValueError("nothing to plot: the tables are empty")
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.4 * nrows))
    FigureCanvasAgg(fig)  # no pyplot: no global state, no display needed
    axes = fig.subplots(nrows, ncols, squeeze=False)
    methods = sorted({m for t in tables for m in t.methods}, key=_method_key)
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}  # one color per method throughout
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (t, dataset) in zip(axes.flat, panels, strict=False):
        cols = [c for c in t.columns if c[0] == dataset]
        for m in t.methods:
            xs, ys, es = [], [], []
            for i, col in enumerate(cols):
                c = t.cell(m, col)
                if c is not None:
                    xs.append(i)
                    ys.append(c.mean)
                    es.append(c.std or 0.0)
            if xs:
                ax.errorbar(xs, ys, yerr=es if any(es) else None, marker="o", capsize=3,
                            label=m, color=colors[m],
                            linestyle="--" if m.startswith(BASELINE) else "-")
        ax.set_xticks(range(len(cols)), [labels_header(n) for _, n in cols])
        ax.set_xlim(-0.5, len(cols) - 0.5)
        ax.set_xlabel("labeled training data")
        ax.set_ylabel(f"{METRICS[t.metric][0]} (%)")
        ax.set_title(f"{dataset}: {PROTOCOL_NAMES.get(t.protocol, t.protocol)}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def full_markdown(tables: Sequence[Table], records: Sequence[RunRecord] = ()) -> str:
    """The tables, each followed by its difference to scratch, then the pretext tasks."""
    parts = []
    for t in tables:
        parts.append(to_markdown([t]))
        versus = versus_baseline(t)
        if versus and len(t.methods) > 1:
            parts.append(versus)
    summary = pretext_summary(records)
    return "\n".join(parts + ([summary] if summary else []))


def write_report(tables: Sequence[Table], out: Path | str, make_plot: bool = True,
                 records: Sequence[RunRecord] = ()) -> dict[str, Path]:
    """table.md (with the differences to scratch and, given `records`, the pretext tasks),
    table.csv, table.tex and (unless `make_plot` is False) plot.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "table.md", "csv": out / "table.csv", "tex": out / "table.tex"}
    paths["md"].write_text(full_markdown(tables, records), encoding="utf-8")
    paths["csv"].write_text(to_csv(tables), encoding="utf-8")
    paths["tex"].write_text(to_latex(tables), encoding="utf-8")
    if make_plot:
        paths["png"] = plot(tables, out / "plot.png")
    return paths
