"""Never lose work: a real training run killed (SIGKILL) or stopped (SIGTERM) in a subprocess
resumes from last.pt and ends with exactly the weights of an uninterrupted run; Ctrl-C saves
and exits with 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from htr_ssl.cli._errors import fail
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.cli.train import job_from_config
from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.pipeline import DataConfig, make_loader
from htr_ssl.data.sample import Sample
from htr_ssl.train import checkpoint
from htr_ssl.train.finetune import TrainSummary, train_recognizer
from htr_ssl.train.interrupt import TrainingInterrupted
from htr_ssl.train.loop import fit
from htr_ssl.train.trainer_config import TrainerConfig

STEPS = 12
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
ENV.pop("HTR_SSL_DEBUG", None)


def overrides(data: Path, *extra: str) -> list[str]:
    """A small CTC model on 32 px lines: augmentation and dropout on, so their RNG matters."""
    return ["data=folder", f"data.root={data}", "data.height=32", "data.num_workers=0",
            "data.batch_size=4", "data.crop_cache=null", "data.augment.recipe=light",
            "data.augment.p=0.8", f"trainer.max_steps={STEPS}", "trainer.val_every=6",
            "trainer.checkpoint_every=2", "trainer.warmup_steps=2", "trainer.precision=fp32",
            "trainer.device=cpu", "trainer.progress=false", "trainer.deterministic=true", *extra]


@pytest.fixture()
def one_thread():
    """The subprocesses run with one thread; in-process runs must too, to compare bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_here(data: Path, run_dir: Path, *extra: str) -> TrainSummary:
    """The same training command, run in this process (what the CLI calls, minus start-up)."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides(data, f"run_dir={run_dir}", *extra))
    return train_recognizer(job_from_config(cfg))


def start_and_signal(data: Path, run_dir: Path, sig: int) -> subprocess.CompletedProcess:
    """Start `htr-ssl-train` in a subprocess, wait for its first periodic last.pt, send `sig`."""
    args = [sys.executable, "-m", "htr_ssl.cli.train", *overrides(data),
            f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = checkpoint.load(run_dir / "last.pt")
    assert ckpt["loop"]["step"] == STEPS
    return ckpt["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs from the uninterrupted run"


@pytest.fixture(scope="module")
def straight(tiny_lines, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The final weights of an uninterrupted run (in this process, one thread)."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_here(tiny_lines, run_dir)
    finally:
        torch.set_num_threads(before)
    return final_weights(run_dir)


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tiny_lines, tmp_path, straight,
                                                              one_thread):
    run_dir = tmp_path / "run"
    killed = start_and_signal(tiny_lines, run_dir, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    step = checkpoint.load(run_dir / "last.pt")["loop"]["step"]
    assert 2 <= step < STEPS and step % 2 == 0, "killed too late to test anything"
    assert not (run_dir / "done").exists()

    # resume=auto finds last.pt in the run folder and continues it
    summary = train_here(tiny_lines, run_dir, "resume=auto")
    assert summary.step == STEPS and summary.test is not None
    assert_same_weights(final_weights(run_dir), straight)
    assert list(run_dir.glob(".*.tmp")) == []  # no partial writes left behind


def test_sigterm_saves_exits_cleanly_and_resumes(tiny_lines, tmp_path, straight, one_thread):
    run_dir = tmp_path / "run"
    stopped = start_and_signal(tiny_lines, run_dir, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    last = run_dir / "last.pt"
    step = checkpoint.load(last)["loop"]["step"]
    assert 2 <= step < STEPS, "stopped too late to test anything"
    message = stopped.stderr.strip().splitlines()[-1]
    assert message.startswith(f"stopped: SIGTERM received: stopped at step {step} and saved")
    assert f"resume={last}" in message

    train_here(tiny_lines, run_dir, f"resume={last}")
    assert_same_weights(final_weights(run_dir), straight)
    assert json.loads((run_dir / "done").read_text())["step"] == STEPS

    # started again (as a sweep would be), the finished run is skipped, not retrained
    before = last.stat().st_mtime_ns
    again = train_here(tiny_lines, run_dir, "resume=auto")
    assert again.finished and again.test["n"] == 6
    assert last.stat().st_mtime_ns == before


def test_ctrl_c_saves_exits_130_and_restores_the_handlers(tmp_path, write_image, capsys):
    """In process: SIGINT mid-run finishes that step, saves it, and the CLI exits with 130."""
    samples = [Sample(f"s{i}", write_image(tmp_path / f"{i}.png", 16, 40), "ab")
               for i in range(6)]
    loader = make_loader(samples, Alphabet(("a", "b")), DataConfig(height=16, batch_size=2),
                         True)
    model = nn.Linear(1, 1)
    calls = []

    def loss(m, batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return (m(batch.images.mean().view(1, 1)) ** 2).sum(), {}

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as err:
        fit(model, loss, loader, TrainerConfig(max_steps=50, checkpoint_every=0, device="cpu",
                                               progress=False), tmp_path / "run")
    assert signal.getsignal(signal.SIGINT) is before
    assert err.value.step == 3 and len(calls) == 3
    assert checkpoint.load(tmp_path / "run" / "last.pt")["loop"]["step"] == 3
    with pytest.raises(SystemExit) as exit_:
        fail(err.value)
    assert exit_.value.code == 130
    assert "SIGINT received: stopped at step 3" in capsys.readouterr().err


def test_resolve_resume_decides_fresh_continue_finished_or_refuse(tmp_path):
    run = tmp_path / "run"
    assert checkpoint.resolve_resume(run, "auto") is None  # nothing there: start fresh
    assert checkpoint.resolve_resume(run, None) is None
    checkpoint.save({"model": {}}, run / "last.pt")
    assert checkpoint.resolve_resume(run, "auto") == run / "last.pt"  # interrupted: continue
    with pytest.raises(FileExistsError, match="resume=auto"):
        checkpoint.resolve_resume(run, None)  # a new run never overwrites one
    checkpoint.mark_done(run, {"step": 5})
    assert checkpoint.resolve_resume(run, "auto") == checkpoint.FINISHED
    assert checkpoint.resolve_resume(run, run / "last.pt") == run / "last.pt"  # explicit path
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        checkpoint.resolve_resume(run, run / "nope.pt")
