"""A sweep pretrains once per method and dataset, skips finished cells, resumes broken ones."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import RecognizerConfig
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train.experiment import Cell, run_cell
from htr_ssl.train.finetune import FinetuneConfig, TrainJob
from htr_ssl.train.loop import TrainerConfig
from htr_ssl.train.pretrain import PretrainJob

ENC = EncoderConfig("small", 32, lstm_hidden=32)


def cell(root: Path, data_root: Path, method: str, labels: float, mode: str = "full") -> Cell:
    data = DataConfig(name="folder", root=str(data_root), height=32, batch_size=8,
                      labels=labels, augment=AugmentConfig("none"))
    trainer = TrainerConfig(max_steps=2, val_every=2, progress=False)
    job = TrainJob(data, RecognizerConfig(ENC, "ctc"), trainer,
                   root / method / f"{mode}_{labels}", FinetuneConfig(mode=mode),
                   dataset="tiny")
    pre = None
    if method != "scratch":
        pre = PretrainJob(replace(data, augment=AugmentConfig("light")), ENC,
                          {method: pretext_config(method)}, trainer,
                          root / "pretrain" / method)
    return Cell(method, job, pre)


def test_pretraining_runs_once_and_finished_cells_are_skipped(tiny_lines, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    first = run_cell(cell(tmp_path, tiny_lines, "rotation", 0.5))
    pre_ckpt = tmp_path / "pretrain" / "rotation" / "last.pt"
    stamp = pre_ckpt.stat().st_mtime_ns
    second = run_cell(cell(tmp_path, tiny_lines, "rotation", 1.0))
    assert pre_ckpt.stat().st_mtime_ns == stamp  # reused, not trained again
    assert "reused" in caplog.text
    for summary in (first, second):
        assert summary["test"]["run"]["method"] == "rotation"
    again = run_cell(cell(tmp_path, tiny_lines, "rotation", 0.5))
    assert again["skipped"] == "finished"


def test_frozen_scratch_is_skipped_and_an_interrupted_cell_resumes(tiny_lines, tmp_path):
    assert run_cell(cell(tmp_path, tiny_lines, "scratch", 1.0, "frozen"))["skipped"]
    c = cell(tmp_path, tiny_lines, "scratch", 1.0)
    run_cell(c)
    (c.finetune.run_dir / "done").unlink()  # as if killed before the test scoring
    summary = run_cell(c)
    assert summary["step"] == 2 and (c.finetune.run_dir / "metrics.json").is_file()
