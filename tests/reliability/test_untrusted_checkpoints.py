"""No code in a checkpoint ever runs: every command that loads one refuses a crafted pickle.

Each case hands a `.pt` whose pickle calls `os.system("touch marker")` to one entry point, as a
user would, and checks that the marker was not created and that the command stopped with a
one-line error naming the file. Checkpoints htr-ssl writes hold nothing else than tensors and
plain data, so they load that way (those of earlier versions too).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_files import evil_checkpoint

from htr_ssl.train import checkpoint

DATA = ["data=folder", "data.height=32", "data.num_workers=0", "trainer.max_steps=1",
        "trainer.progress=false"]


def entry_points(tiny: Path, image: Path, evil: Path, tmp: Path) -> dict[str, tuple[str, ...]]:
    """Every command line that loads a checkpoint, with `evil` where the checkpoint goes."""
    data = [*DATA, f"data.root={tiny}"]
    pre = tmp / "exp" / "pretrain" / "tiny"  # experiment's pretraining folder: <dir>/<stage>
    return {
        "eval": ("evaluate", f"checkpoint={evil}", f"hydra.run.dir={tmp / 'h'}"),
        "predict": ("predict", f"checkpoint={evil}", f"inputs=[{image}]", f"out={tmp / 'o.tsv'}",
                    f"hydra.run.dir={tmp / 'h'}"),
        "heatmaps": ("heatmaps", f"checkpoints=[{evil}]", f"inputs=[{image}]",
                     f"out={tmp / 'maps'}"),
        "finetune-init-from": ("train", *data, f"finetune.init_from={evil}",
                               f"hydra.run.dir={tmp / 'ft'}"),
        "train-resume": ("train", *data, f"resume={evil}"),
        "train-resume-auto": ("train", *data, "resume=auto", f"hydra.run.dir={evil.parent}"),
        "pretrain-resume": ("pretrain", *data, f"resume={evil}"),
        "experiment-pretraining": ("experiment", *data, "method=rotation", "dataset=tiny",
                                   "pretrain.trainer.max_steps=1", f"root={tmp / 'exp'}",
                                   f"pretrain.dir={pre}",
                                   f"hydra.run.dir={tmp / 'exp' / 'cell'}"),
    }


@pytest.mark.parametrize("entry", ["eval", "predict", "heatmaps", "finetune-init-from",
                                   "train-resume", "train-resume-auto", "pretrain-resume",
                                   "experiment-pretraining"])
def test_crafted_checkpoint_runs_nothing(entry, cli, tiny_lines, tmp_path):
    marker = tmp_path / "marker"
    kind = "pretext" if entry.startswith(("pretrain", "experiment")) else "recognizer"
    folder = tmp_path / "exp" / "pretrain" / "tiny" / "rotation" if entry.startswith(
        "experiment") else tmp_path / "run"
    evil = evil_checkpoint(folder / "last.pt", marker, kind=kind)
    module, *args = entry_points(tiny_lines, next(tiny_lines.glob("*.png")), evil,
                                 tmp_path)[entry]
    proc = cli(module, *args, cwd=tmp_path)
    assert not marker.exists(), f"{entry} ran the checkpoint's code"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: refusing checkpoint {evil}" in proc.stderr and "posix.system" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_checkpoints_hold_only_tensors_and_plain_data(tmp_path):
    """What `fit` saves loads with plain `torch.load(weights_only=True)`, and restores the RNG
    states exactly; a checkpoint of an earlier version (numpy's RNG state as an ndarray) still
    loads and restores."""
    np.random.seed(3)
    checkpoint.save({"model": {}, "rng": checkpoint.rng_state()}, tmp_path / "new.pt")
    expected = np.random.rand(3), random.random(), torch.rand(2)
    checkpoint.set_rng_state(torch.load(tmp_path / "new.pt", weights_only=True)["rng"])
    assert np.array_equal(np.random.rand(3), expected[0]) and random.random() == expected[1]
    assert torch.equal(torch.rand(2), expected[2])
    np.random.seed(4)
    torch.save({"model": {}, "rng": {"torch": torch.get_rng_state(), "cuda": [],
                                     "numpy": np.random.get_state(),
                                     "python": random.getstate()}}, tmp_path / "old.pt")
    expected = np.random.rand(3)
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "old.pt")["rng"])
    assert np.array_equal(np.random.rand(3), expected)
