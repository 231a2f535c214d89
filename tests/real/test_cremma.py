"""The real dev set (CREMMA-MSS-18 in ../shared): read with the published counts, and the
real-data protocol run end to end on a few of its lines (pretrain -> fine-tune -> report)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from htr_ssl.cli._config import to_dataclass
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.pipeline import DataConfig, load_samples

REPO = Path(__file__).resolve().parents[2]
CREMMA = REPO.parent / "shared" / "data" / "cremma-mss-18"
pytestmark = pytest.mark.skipif(not (CREMMA / "manifest.tsv").is_file(),
                                reason="the CREMMA-MSS-18 dev set is not in ../shared")


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def test_the_dev_set_is_read_with_its_document_disjoint_split():
    cfg = _compose("train", ["data=cremma", f"data.root={CREMMA / 'manifest.tsv'}"])
    samples = load_samples(to_dataclass(DataConfig, cfg.data))
    assert len(samples) == 3442
    assert Counter(s.split for s in samples) == {"train": 2435, "val": 344, "test": 663}
    documents = {split: {s.writer for s in samples if s.split == split}
                 for split in ("train", "val", "test")}
    assert [len(d) for d in documents.values()] == [6, 2, 2]
    assert not (documents["train"] & documents["val"] or documents["train"] & documents["test"]
                or documents["val"] & documents["test"])
    assert all(s.text for s in samples)


def _tiny_manifest(tmp_path: Path) -> Path:
    """20 real lines: 12 train (from two documents), 4 val, 4 test, absolute image paths."""
    rows = (CREMMA / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    picked: list[str] = []
    quota = {"train": 12, "val": 4, "test": 4}
    for row in rows:
        path, text, document, split = row.split("\t")
        if quota[split] and len(text) < 40:
            quota[split] -= 1
            picked.append("\t".join([str(CREMMA / path), text, document, split]))
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(picked) + "\n", encoding="utf-8")
    return manifest


def test_the_real_protocol_runs_end_to_end_on_a_few_lines(tmp_path):
    """+experiment=real with the recommended start and scratch, a few steps each, then the
    report: one row per start, the pretext's own accuracy reported next to it."""
    from htr_ssl.cli.experiment import stages
    from htr_ssl.cli.pretrain import use_synimg
    from htr_ssl.cli.train import job_from_config
    from htr_ssl.eval.report import collect_runs, full_markdown, metric_tables
    from htr_ssl.train.experiment import Cell, run_cell

    manifest = _tiny_manifest(tmp_path)
    recommended = _compose("pretrain", [])  # on a user's data (not data=synthetic)
    method = "+".join([*recommended.pretext,
                       *(["synimg"] if use_synimg(recommended.synimg, "cremma") else [])])
    for start in ("scratch", method):
        cfg = _compose("experiment", [
            "+experiment=real", f"method={start}", f"data.root={manifest}", "data.labels=0.5",
            f"root={tmp_path / 'exp'}", "dataset=cremma", f"run_dir={tmp_path / start}",
            "data.num_workers=0", "data.batch_size=4", "model.lstm_hidden=16",
            "pretrain.trainer.max_steps=3", "pretrain.trainer.val_every=3",
            "pretrain.val_batches=1", "trainer.max_steps=3", "trainer.val_every=3",
            "trainer.warmup_steps=1", "pretrain.trainer.warmup_steps=1",
            "trainer.progress=false", "pretrain.trainer.progress=false",
            "finetune.freeze_steps=1", f"synthetic.generate.out_dir={tmp_path / 'synth'}",
            "synthetic.generate.n_writers=5", "synthetic.generate.forms_per_writer=1",
            "synthetic.generate.lines_per_form=3", "synthetic.generate.workers=1"])
        summary = run_cell(Cell(start, job_from_config(cfg), stages(cfg)))
        assert summary.test["labeled_lines"] == 6 and summary.test["n"] == 4
    records = collect_runs(tmp_path)
    assert sorted(r.method for r in records) == sorted(["scratch", method])
    text = full_markdown(metric_tables(records, ["cer", "wer", "wacc"]), records)
    assert "difference to scratch" in text and "chance" in text

