"""A sweep pretrains once per method and dataset, skips finished cells, resumes broken ones."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train.experiment import Cell, run_cell
from htr_ssl.train.finetune import FinetuneConfig, TrainJob
from htr_ssl.train.pretrain import PretrainJob
from htr_ssl.train.trainer_config import TrainerConfig

ENC = EncoderConfig("small", 32, lstm_hidden=32)


def cell(root: Path, data_root: Path, method: str, labels: float, mode: str = "full") -> Cell:
    data = DataConfig(name="folder", root=str(data_root), height=32, batch_size=8,
                      labels=labels, augment=AugmentConfig("none"))
    trainer = TrainerConfig(max_steps=2, val_every=2, progress=False)
    job = TrainJob(data, RecognizerConfig(ENC, DecoderConfig("ctc")), trainer,
                   root / method / f"{mode}_{labels}", FinetuneConfig(mode=mode),
                   dataset="tiny")
    stages = []
    if method != "scratch":
        stages.append(PretrainJob(replace(data, augment=AugmentConfig("light")), ENC,
                                  {method: pretext_config(method)}, trainer,
                                  root / "pretrain" / method))
    return Cell(method, job, stages)


def test_pretraining_runs_once_and_finished_cells_are_skipped(tiny_lines, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    first = run_cell(cell(tmp_path, tiny_lines, "rotation", 0.5))
    pre_ckpt = tmp_path / "pretrain" / "rotation" / "last.pt"
    stamp = pre_ckpt.stat().st_mtime_ns
    second = run_cell(cell(tmp_path, tiny_lines, "rotation", 1.0))
    assert pre_ckpt.stat().st_mtime_ns == stamp  # reused, not trained again
    assert "reused" in caplog.text
    for summary in (first, second):
        assert summary.test["run"]["method"] == "rotation"
    again = run_cell(cell(tmp_path, tiny_lines, "rotation", 0.5))
    assert again.skipped == "finished"


def test_frozen_scratch_is_skipped_and_an_interrupted_cell_resumes(tiny_lines, tmp_path):
    assert run_cell(cell(tmp_path, tiny_lines, "scratch", 1.0, "frozen")).skipped
    c = cell(tmp_path, tiny_lines, "scratch", 1.0)
    run_cell(c)
    (c.finetune.run_dir / "done").unlink()  # as if killed before the test scoring
    summary = run_cell(c)
    assert summary.step == 2 and (c.finetune.run_dir / "metrics.json").is_file()


def test_method_names_parse_into_stages():
    from htr_ssl.train.experiment import parse_method

    assert parse_method("scratch") == []
    assert parse_method("masked+flip") == [["masked", "flip"]]
    assert parse_method("synthetic/masked+synimg") == [["synthetic"], ["masked", "synimg"]]
    for bad, why in (("masked//flip", "empty stage"), ("synthetic+masked", "stage of its own"),
                     ("synimg", "name a pretext")):
        with pytest.raises(ValueError, match=why):
            parse_method(bad)


def test_a_chain_of_stages_from_the_experiment_config(tiny_lines, tmp_path):
    """method=synthetic/rotation+synimg through the composed config: the synthetic lines are
    generated once, a recognizer trains on them, rotation continues its encoder on the tiny
    lines' training split plus every image of an extra folder and of the synthetic set, the
    cell fine-tunes from that; the report has one row (stages are not rows) named by the
    method string."""
    from hydra import compose, initialize_config_dir

    from htr_ssl.cli._paths import CONFIG_DIR
    from htr_ssl.cli.experiment import stages
    from htr_ssl.cli.train import job_from_config
    from htr_ssl.data.pipeline import load_samples
    from htr_ssl.data.splits import select
    from htr_ssl.eval.report import collect_runs

    short = ["max_steps=2", "val_every=2", "warmup_steps=1", "progress=false"]
    overrides = [
        "method=synthetic/rotation+synimg", "data=folder", f"data.root={tiny_lines}",
        "data.height=32", "data.num_workers=0", "data.batch_size=4", f"root={tmp_path}",
        "dataset=tiny", f"run_dir={tmp_path / 'cell'}", "model.lstm_hidden=16",
        f"synthetic.generate.out_dir={tmp_path / 'synth'}", "synthetic.generate.n_writers=5",
        "synthetic.generate.forms_per_writer=1", "synthetic.generate.lines_per_form=3",
        "synthetic.generate.workers=1", f"pretrain.extra_images=[{tiny_lines}]",
        *[f"{t}.{o}" for t in ("trainer", "pretrain.trainer", "synthetic.trainer")
          for o in short]]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="experiment", overrides=overrides)
    chain = stages(cfg)
    assert [Path(s.run_dir) for s in chain] == [
        tmp_path / "pretrain/tiny/synthetic", tmp_path / "pretrain/tiny/synthetic/rotation+synimg"]
    summary = run_cell(Cell(cfg.method, job_from_config(cfg), chain))
    assert summary.test["run"]["method"] == "synthetic/rotation+synimg"
    assert summary.test["run"]["pretext"]["rotation/acc"] >= 0
    assert (tmp_path / "synth" / "ascii" / "lines.txt").is_file()
    pool = (chain[1].run_dir / "pretrain_ids.tsv").read_text().splitlines()
    own = select(load_samples(chain[1].data), "train")  # its own training split
    folder, synth = (load_samples(e, unlabeled=True) for e in chain[1].extra)  # all
    assert len(folder) == 30 and synth and own
    assert len(pool) == len(own) + len(folder) + len(synth)
    records = collect_runs(tmp_path)
    assert [r.method for r in records] == ["synthetic/rotation+synimg"]
