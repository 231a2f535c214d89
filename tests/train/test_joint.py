"""Fine-tuning with a pretext alongside (S4L, train/joint.py): checkpoints that read as the
recognizer's, the unlabeled stream's position resumed exactly, and a pretext that learns."""

import csv
import json
import shutil
from dataclasses import replace

import pytest
import torch

from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.inference.model_file import load_recognizer
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig
from htr_ssl.train import checkpoint
from htr_ssl.train.finetune import FinetuneConfig, TrainJob, train_recognizer
from htr_ssl.train.trainer_config import TrainerConfig


def _joint(root, run_dir, steps) -> TrainJob:
    """5 labeled lines of the tiny set, masked-frame prediction alongside on all of them."""
    data = DataConfig(name="folder", root=str(root), height=32, batch_size=8,
                      augment=AugmentConfig("none"), num_workers=0, labels=0.25)
    model = RecognizerConfig(EncoderConfig("small", height=32), DecoderConfig("ctc"))
    trainer = TrainerConfig(max_steps=steps, val_every=2, log_every=1, warmup_steps=1,
                            device="cpu", progress=False)
    return TrainJob(data, model, trainer, run_dir,
                    finetune=FinetuneConfig(aux="masked", aux_weight=0.5))


def test_joint_checkpoint_reads_as_a_recognizer_and_the_pretext_learns(tiny_lines, tmp_path):
    run = tmp_path / "run"
    summary = train_recognizer(_joint(tiny_lines, run, 8))
    ckpt = checkpoint.load(run / "best.pt")
    aux = [k for k in ckpt["model"] if k.startswith("aux.")]
    assert "aux.epoch" in aux and any(k.startswith("aux.pretext.") for k in aux)
    model, _, _ = load_recognizer(run / "best.pt")  # predict / export read it as a recognizer
    assert not any(k.startswith("aux.") for k in model.state_dict())
    assert summary.test["run"]["method"] == "scratch + masked alongside"
    # 5 labeled lines, but the pretext sees the whole training split (24 lines, 3 batches)
    assert int(checkpoint.load(run / "last.pt")["model"]["aux.epoch"]) == 8 // 3
    rows = list(csv.DictReader((run / "log.csv").open()))
    aux_loss = [float(r["value"]) for r in rows if r["tag"] == "train/aux/loss"]
    assert len(aux_loss) == 8 and sum(aux_loss[-3:]) < sum(aux_loss[:3])


def test_joint_resume_draws_the_same_unlabeled_batches(tiny_lines, tmp_path, monkeypatch):
    save = checkpoint.save

    def keep_step_4(state, path):  # last.pt of step 4 (mid-epoch of the stream): keep a copy
        save(state, path)
        if path.name == "last.pt" and state["loop"]["step"] == 4:
            save(state, path.with_name("mid.pt"))

    monkeypatch.setattr(checkpoint, "save", keep_step_4)
    straight = tmp_path / "straight"
    train_recognizer(_joint(tiny_lines, straight, 6))
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    (resumed / "done").unlink()
    shutil.copy(resumed / "mid.pt", resumed / "last.pt")
    assert int(checkpoint.load(resumed / "last.pt")["model"]["aux.batch"]) == 1
    train_recognizer(replace(_joint(tiny_lines, resumed, 6), resume="auto"))
    a = checkpoint.load(straight / "last.pt")["model"]
    b = checkpoint.load(resumed / "last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["cer"] == json.loads((straight / "metrics.json").read_text())["cer"]


def test_joint_options_are_checked():
    with pytest.raises(ValueError, match="unknown pretext 'maskd'"):
        FinetuneConfig(aux="maskd")
    with pytest.raises(ValueError, match=r"'ratioo'.*pretext 'masked'"):
        FinetuneConfig(aux="masked", aux_options={"ratioo": 0.3})
    with pytest.raises(ValueError, match=r"finetune\.mode=full"):
        FinetuneConfig(aux="masked", mode="frozen", init_from="x.pt")
