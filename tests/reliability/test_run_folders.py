"""Finished work is never overwritten: run-folder lock, refused resumes, predict's out= file.

The commands run as a user runs them, one process each (two at once for the lock).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import RecognizerConfig, build_recognizer
from htr_ssl.train import checkpoint

ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
TRAIN = ["data=folder", "data.height=32", "data.num_workers=0", "data.augment.recipe=none",
         "trainer.progress=false"]


def test_two_runs_in_one_folder_at_once(tiny_lines, tmp_path, cli):
    """The second of two concurrent htr-ssl-train commands in one folder is refused before it
    writes anything; the first one's folder holds its config and checkpoints alone."""
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "htr_ssl.cli.train", *TRAIN, f"data.root={tiny_lines}",
         "trainer.max_steps=100000", "trainer.val_every=100000", "trainer.checkpoint_every=0",
         "trainer.seed=1", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "log.csv").exists():  # the first run is training
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first run never started training"
            time.sleep(0.1)
        second = cli("train", *TRAIN, f"data.root={tiny_lines}", "trainer.max_steps=2",
                     "trainer.val_every=2", "trainer.seed=2", f"hydra.run.dir={run}",
                     cwd=tmp_path)
        assert first.poll() is None, "the first run ended before the second one started"
    finally:
        first.send_signal(signal.SIGTERM)  # it saves last.pt and stops
        _, err = first.communicate(timeout=120)
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"error: {run} is in use by another htr-ssl run (process {first.pid})" \
        in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 128 + signal.SIGTERM, err[-2000:]
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert config["trainer"]["seed"] == 1  # the first run's record, not the second's
    assert checkpoint.load(run / "last.pt")["config"]["trainer"]["seed"] == 1
    assert not (run / "best.pt").exists() and not (run / checkpoint.DONE).exists()


def test_resume_with_other_options_leaves_the_run_alone(tiny_lines, tmp_path, cli):
    """resume=auto with data.labels changed is refused and names the option; the run's
    record (.hydra/config.yaml, labeled_ids.tsv, metrics.json) stays as it was. fork=true
    continues the checkpoint in a new folder instead."""
    run = tmp_path / "run"
    args = [*TRAIN, f"data.root={tiny_lines}", "trainer.val_every=1"]
    assert cli("train", *args, "trainer.max_steps=1", f"hydra.run.dir={run}",
               cwd=tmp_path).returncode == 0
    (run / checkpoint.DONE).unlink()  # as if killed after its last checkpoint
    record = {p: p.read_bytes() for p in (run / ".hydra" / "config.yaml",
                                          run / "labeled_ids.tsv", run / "metrics.json")}
    proc = cli("train", *args, "trainer.max_steps=1", "data.labels=0.5", "resume=auto",
               f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "options differ from the run that wrote it: data.labels 1.0 -> 0.5" in proc.stderr
    assert "fork=true" in proc.stderr and "Traceback" not in proc.stderr
    assert all(p.read_bytes() == content for p, content in record.items())
    fork = tmp_path / "fork"
    proc = cli("train", *args, "trainer.max_steps=2", "data.labels=0.5",
               f"resume={run / 'last.pt'}", "fork=true", f"hydra.run.dir={fork}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(p.read_bytes() == content for p, content in record.items())
    assert yaml.safe_load((fork / ".hydra" / "config.yaml").read_text())["data"]["labels"] == 0.5
    assert (fork / checkpoint.DONE).is_file() and (fork / "metrics.json").is_file()
    assert checkpoint.load(fork / "last.pt")["loop"]["step"] == 2  # continued from step 1


@pytest.mark.parametrize("command", ["train", "experiment"])
def test_unwritable_hydra_run_dir_is_one_line(command, tmp_path, cli):
    """The experiment's folder names `${hydra:runtime.choices.data}`: checked all the same."""
    (tmp_path / "results").write_text("a file, not a folder")
    where = (f"hydra.run.dir={tmp_path / 'results' / 'run'}" if command == "train"
             else f"root={tmp_path / 'results'}")
    proc = cli(command, where, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: cannot write to the output folder "
                                  f"{tmp_path / 'results'}")
    assert "Fix: choose a writable folder (hydra.run.dir=...)" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture
def recognizer(tmp_path) -> Path:
    """An untrained recognizer checkpoint, as htr-ssl writes it (enough to read with)."""
    alphabet = Alphabet(tuple("abcdefghijklmnopqrstuvwxyz "))
    cfg = RecognizerConfig(EncoderConfig("small", 32, lstm_hidden=32))
    model = build_recognizer(cfg, alphabet)
    path = tmp_path / "model" / "best.pt"
    checkpoint.save({"model": model.state_dict(), "kind": "recognizer",
                     "alphabet": alphabet.to_dict(), "model_config": asdict(cfg)}, path)
    return path


def test_predict_keeps_files_and_every_line_it_read(recognizer, tiny_lines, tmp_path, cli):
    """out= never replaces a file (a checkpoint least of all) unless overwrite=true; a batch
    of only unreadable images loses none of the other lines."""
    proc = cli("predict", f"checkpoint={recognizer}", f"inputs=[{tiny_lines}]",
               f"out={recognizer}", cwd=tmp_path)
    assert proc.returncode == 2 and f"out={recognizer} already exists" in proc.stderr
    assert "overwrite=true" in proc.stderr
    assert checkpoint.load(recognizer)["kind"] == "recognizer"  # intact
    images = tmp_path / "images"
    images.mkdir()
    for png in sorted(tiny_lines.glob("*.png"))[:3]:
        (images / png.name).write_bytes(png.read_bytes())
    (images / "001.png").write_bytes(b"not an image")  # alone in its batch (batch_size=1)
    out = tmp_path / "pred.tsv"
    out.write_text("an earlier transcription\n")
    proc = cli("predict", f"checkpoint={recognizer}", f"inputs=[{images}]", f"out={out}",
               "overwrite=true", "batch_size=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = out.read_text().splitlines()
    assert rows[0] == "path\tline\ttext\tconfidence\tword_confidences"
    assert [r.split("\t")[0] for r in rows[1:]] == [str(images / "000.png"),
                                                   str(images / "002.png")]
    assert "1 of 3 images were unreadable" in proc.stdout + proc.stderr  # the log: stdout


def test_eval_refuses_an_unwritable_out_dir_before_reading(recognizer, tiny_lines, tmp_path,
                                                           cli):
    (tmp_path / "results").write_text("a file, not a folder")
    proc = cli("evaluate", f"checkpoint={recognizer}", "data=folder",
               f"data.root={tmp_path / 'no-data-here'}", f"out_dir={tmp_path / 'results' / 'e'}",
               cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"cannot write to the output folder {tmp_path / 'results' / 'e'}" in proc.stderr
    assert "(out_dir=...)" in proc.stderr  # before the (missing) data was read


def test_a_new_run_is_refused_before_any_data_is_read_where_a_checkpoint_lies(tmp_path):
    """rundir.begin (called before the data is read) makes the same folder check as fit."""
    from htr_ssl.train import rundir

    (tmp_path / "last.pt").write_bytes(b"a finished user's checkpoint")
    with pytest.raises(FileExistsError, match=r"resume=.*last\.pt"):
        rundir.begin(tmp_path, None, "recognizer", {})
    assert (tmp_path / "last.pt").read_bytes() == b"a finished user's checkpoint"
