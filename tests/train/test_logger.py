"""Run logs: log.csv always holds every scalar; TensorBoard files only when it is installed."""

from __future__ import annotations

import logging
import sys

from htr_ssl.train.logger import RunLogger


def _log_twice(run_dir) -> None:
    logger = RunLogger(run_dir)
    logger.log("train", 1, {"loss": 2.5})
    logger.log("val", 2, {"cer": 10.0})
    logger.close()


def test_csv_log_without_tensorboard(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.INFO):
        _log_twice(tmp_path)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows == ["step,tag,value", "1,train/loss,2.5", "2,val/cer,10"]
    assert not (tmp_path / "tb").exists()
    assert "pip install 'htr-ssl[tensorboard]'" in caplog.text


def test_tensorboard_files_when_installed(tmp_path):
    _log_twice(tmp_path)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3
