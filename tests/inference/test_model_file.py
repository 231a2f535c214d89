"""Model files: exports load like checkpoints (predict, eval, finetune.init_from), carry no
paths or optimizer, and reading a model never imports the training code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from recognizer_files import CONFIG
from safetensors.torch import save_file

from htr_ssl.inference.model_file import (
    CheckpointError,
    describe,
    export_recognizer,
    load,
    load_recognizer,
)
from htr_ssl.models.encoders import build_encoder
from htr_ssl.train import checkpoint


def test_an_export_seeds_an_encoder_and_reads_as_the_checkpoint(reader_checkpoint, tmp_path):
    ckpt = load(reader_checkpoint)
    scores = {"split": "test", "n": 6, "cer": 12.5, "checkpoint": str(reader_checkpoint),
              "run": {"method": "flip", "dataset": "letters", "labels": 0.05,
                      "init_from": str(reader_checkpoint)}}
    meta = export_recognizer(ckpt, tmp_path / "m.safetensors", scores)
    assert meta["name"] == "flip" and meta["training"] == {"step": 7, "method": "flip",
                                                           "dataset": "letters", "labels": 0.05}
    assert meta["test"] == {"split": "test", "n": 6, "cer": 12.5}
    assert str(reader_checkpoint.parent) not in json.dumps(meta)
    encoder = build_encoder(CONFIG.encoder)
    checkpoint.load_encoder(encoder, tmp_path / "m.safetensors")  # finetune.init_from
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, ckpt["model"][f"encoder.{k}"])
    model, alphabet, _ = load_recognizer(tmp_path / "m.safetensors")
    images, widths = torch.rand(2, 1, 32, 96), torch.tensor([96, 70])
    same, _, _ = load_recognizer(reader_checkpoint)
    assert torch.equal(model.ctc_logits(images, widths)[0], same.ctc_logits(images, widths)[0])
    assert describe(tmp_path / "m.safetensors")["alphabet"] == alphabet.to_dict()
    assert describe(reader_checkpoint)["resumable"] is False


def test_foreign_safetensors_and_pretext_checkpoints_are_named(reader_checkpoint, tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not an htr-ssl export"):
        load(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="'pretext' checkpoint; htr-ssl-export writes"):
        export_recognizer({**load(reader_checkpoint), "kind": "pretext"}, tmp_path / "p.st")


def test_reading_a_model_imports_no_training_code(reader_checkpoint):
    code = ("import sys; from htr_ssl.inference.model_file import load_recognizer; "
            f"load_recognizer({str(reader_checkpoint)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('htr_ssl.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
