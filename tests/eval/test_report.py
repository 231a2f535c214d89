"""htr-ssl-report: fabricated run folders -> tables (mean ± std over seeds, best marked), plot."""

import json
import logging
import os
import statistics
import subprocess
import sys

import pytest

from htr_ssl.cli._checks import as_option
from htr_ssl.eval.report import (
    build_tables,
    collect_runs,
    labels_header,
    plot,
    tex_escape,
    to_csv,
    to_latex,
    to_markdown,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(root, name, method, labels, seed, wacc, protocol="full", dataset="iam", **extra):
    folder = root / name
    folder.mkdir(parents=True)
    metrics = {"cer": 100 - wacc / 2, "wer": 100 - wacc, "wacc": wacc, "wacc_caseless": wacc,
               "line_acc": 1.0, "n": 10, "split": "test", "labeled_lines": 5,
               "run": {"method": method, "dataset": dataset, "labels": labels,
                       "protocol": protocol, "seed": seed, "encoder": "small",
                       "decoder": "ctc", "init_from": None}, **extra}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def runs(tmp_path):
    """scratch at 5 % (two seeds) and 100 %; rotation at 5 % only (its 100 % run is missing);
    one frozen run; plus an htr-ssl-eval output and a validation-split file to be left out."""
    root = tmp_path / "runs"
    _run(root, "a", "scratch", 0.05, 0, 40.0)
    _run(root, "b", "scratch", 0.05, 1, 44.0)
    _run(root, "c", "scratch", 1.0, 0, 80.0)
    _run(root, "sub/d", "rotation", 0.05, 0, 50.0)
    _run(root, "e", "rotation", 0.05, 0, 30.0, protocol="frozen")
    (root / "a" / "eval_test_ctc_beam").mkdir()
    (root / "a" / "eval_test_ctc_beam" / "metrics.json").write_text(json.dumps(
        {"wacc": 99.0, "cer": 1.0, "split": "test", "checkpoint": str(root / "a" / "best.pt"),
         "decode": {"head": "ctc", "method": "beam", "lexicon": "w.txt", "lm": None}}))
    (root / "val").mkdir()
    (root / "val" / "metrics.json").write_text(json.dumps({"wacc": 1.0, "split": "val"}))
    return root


def test_table_layout_with_missing_cell_seeds_and_best(runs):
    records = collect_runs(runs)
    assert len(records) == 5  # the eval output and the val-split file are left out
    full, frozen = build_tables(records, "wacc")
    assert (full.protocol, frozen.protocol) == ("full", "frozen")
    assert full.methods == ["scratch", "rotation"]  # scratch first
    assert full.columns == [("iam", 0.05), ("iam", 1.0)]
    s5 = full.cell("scratch", ("iam", 0.05))
    assert s5.mean == 42.0 and s5.std == pytest.approx(statistics.stdev([40.0, 44.0]))
    assert s5.n == 2 and not s5.best
    assert full.cell("rotation", ("iam", 0.05)).best  # 50 > 42
    assert full.cell("rotation", ("iam", 1.0)) is None  # missing run: empty cell
    assert full.cell("scratch", ("iam", 1.0)).best  # the only value is the best
    md = to_markdown([full, frozen])
    assert "| method | iam 5 % | iam 100 % |" in md
    assert "| scratch | 42.0 ± 2.8 | **80.0** |" in md
    assert "| rotation | **50.0** |  |" in md
    assert md.index("full fine-tuning") < md.index("frozen encoder")


def test_lower_is_better_for_cer(runs):
    full = build_tables(collect_runs(runs), "cer")[0]
    # cer = 100 - wacc / 2: scratch 5 % = 79.0 (mean), rotation = 75.0 -> rotation best (min)
    assert full.cell("rotation", ("iam", 0.05)).best
    assert not full.cell("scratch", ("iam", 0.05)).best
    with pytest.raises(ValueError, match="metric='bleu'"):
        build_tables(collect_runs(runs), "bleu")


def test_csv_and_latex(runs):
    tables = build_tables(collect_runs(runs), "wacc")
    rows = to_csv(tables).splitlines()
    assert rows[0] == "protocol,method,dataset,labels,column,metric,mean,std,seeds,best"
    assert "full,scratch,iam,0.05,5 %,wacc,42.0000,2.8284,2," in rows
    assert "full,rotation,iam,0.05,5 %,wacc,50.0000,,1,*" in rows
    assert len(rows) == 1 + 4  # missing cells have no row
    tex = to_latex(tables)
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\cmidrule(lr){2-3}" in tex
    assert r"5\,\%" in tex and r"42.0 $\pm$ 2.8" in tex and r"\textbf{50.0}" in tex
    assert tex.count(r"\midrule") == 2  # one row group per protocol
    assert tex_escape("my_method 5% & {x}") == r"my\_method 5\% \& \{x\}"


def test_eval_outputs_become_rows_on_request(runs):
    records = collect_runs(runs, include_eval=True)
    evals = [r for r in records if "[" in r.method]
    assert [r.method for r in evals] == ["scratch [ctc beam lex]"]
    assert evals[0].labels == 0.05 and evals[0].metrics["wacc"] == 99.0


def test_mixed_architectures_are_not_averaged(tmp_path):
    _run(tmp_path, "a", "scratch", 1.0, 0, 40.0)
    other = _run(tmp_path, "b", "scratch", 1.0, 1, 60.0)
    data = json.loads((other / "metrics.json").read_text())
    data["run"]["encoder"] = "bp"
    (other / "metrics.json").write_text(json.dumps(data))
    (table,) = build_tables(collect_runs(tmp_path), "wacc")
    assert table.methods == ["scratch (bp/ctc)", "scratch (small/ctc)"]


def test_malformed_metrics_are_skipped_with_a_warning_naming_the_file(runs, caplog):
    bad = runs / "broken" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text('{"wacc": 1.0, "run": ')
    partial = runs / "partial" / "metrics.json"
    partial.parent.mkdir()
    partial.write_text(json.dumps({"wacc": 1.0, "split": "test", "run": {"method": "x"}}))
    with caplog.at_level(logging.WARNING):
        records = collect_runs(runs)
    assert len(records) == 5
    assert str(bad) in caplog.text and "not a readable JSON file" in caplog.text
    assert str(partial) in caplog.text and "lacks dataset, labels, protocol" in caplog.text


def test_labels_headers():
    assert [labels_header(x) for x in (0.05, 0.1, 1.0, 0.025, 250.0)] == [
        "5 %", "10 %", "100 %", "2.5 %", "250 lines"]


def test_plot_is_a_png(runs, tmp_path):
    path = plot(build_tables(collect_runs(runs), "wacc"), tmp_path / "p.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_positional_dir():
    assert as_option(["runs/a b", "metric=cer"], "dir") == ["dir='runs/a b'", "metric=cer"]
    assert as_option(["dir=runs"], "dir") == ["dir=runs"]
    assert as_option(["--help"], "dir") == ["--help"]


def _cli(*args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "htr_ssl.cli.report", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(runs, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = _cli(str(runs), "metric=cer", cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = runs / "report"
    for name in ("table.md", "table.csv", "table.tex", "plot.png"):
        assert (out / name).exists(), name
    assert (out / "plot.png").read_bytes()[:8] == PNG_MAGIC
    assert "| scratch | 79.0 ± 1.4 | **60.0** |" in proc.stdout
    assert str(out / "table.md") in proc.stdout
    assert list(work.iterdir()) == []  # nothing written in the working directory
    proc = _cli(f"dir={runs}", f"out={tmp_path / 'r2'}", "plot=false", cwd=work)
    assert proc.returncode == 0 and (tmp_path / "r2" / "table.tex").exists()
    assert not (tmp_path / "r2" / "plot.png").exists()


def test_user_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere is not a folder"):
        collect_runs(tmp_path / "nowhere")
    proc = _cli(str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "error: no runs under" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_several_metrics_difference_to_scratch_and_pretext_tasks(tmp_path):
    """CER, WER and WAcc tables; each method against scratch with the spread rule (a gain
    counts only beyond the two stds added); the pretext's own accuracy next to its chance;
    stage runs (e.g. the synthetic-supervised source) are not rows."""
    from htr_ssl.eval.report import full_markdown, metric_tables

    pretext = {"masked/acc": 47.5, "masked/chance": 4.8, "loss": 1.2}
    for seed, (s, m, f) in enumerate([(60, 40, 58), (62, 41, 66), (64, 42, 62)]):
        _run(tmp_path, f"s{seed}", "scratch", 0.05, seed, 2 * (100 - s))  # cer = s
        folder = _run(tmp_path, f"m{seed}", "masked", 0.05, seed, 2 * (100 - m))
        data = json.loads((folder / "metrics.json").read_text())
        data["run"]["pretext"] = pretext
        (folder / "metrics.json").write_text(json.dumps(data))
        _run(tmp_path, f"f{seed}", "flip", 0.05, seed, 2 * (100 - f))
    stage = _run(tmp_path, "stage", "synthetic", 1.0, 0, 90.0)
    data = json.loads((stage / "metrics.json").read_text())
    data["run"]["stage"] = True
    (stage / "metrics.json").write_text(json.dumps(data))

    records = collect_runs(tmp_path)
    assert {r.method for r in records} == {"scratch", "masked", "flip"}
    tables = metric_tables(records, ["cer", "wer", "wacc"])
    assert [t.metric for t in tables] == ["cer", "wer", "wacc"]
    text = full_markdown(tables, records)
    cer_rows = text.split("CER (%), lower is better: difference to scratch")[1]
    assert "| masked | +21.0 (x0.66), yes |" in cer_rows  # 62 -> 41, stds 2 and 1
    assert "| flip | +0.0 (x1.00), within spread |" in cer_rows
    assert "masked acc 47.5 % (chance 4.8 %)" in text
