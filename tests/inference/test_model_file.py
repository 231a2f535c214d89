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
    META_KEY,
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


@pytest.mark.parametrize("head,method", [("ctc", "greedy"), ("ctc", "beam")])
def test_an_export_reads_on_the_fused_cpu_path_as_on_the_plain_one(reader_checkpoint, tmp_path,
                                                                   head, method):
    """htr-ssl-predict's reading of an export: the fused CPU path (the default in eval mode)
    gives the checkpoint's text and confidences, as the plain blocks do."""
    from htr_ssl.eval.evaluate import DecodeConfig, Transcriber
    from htr_ssl.models import cpu_inference

    export_recognizer(load(reader_checkpoint), tmp_path / "m.safetensors")
    images, widths = torch.rand(4, 1, 32, 120), torch.tensor([120, 96, 64, 40])
    decode = DecodeConfig(head=head, method=method, beam_size=4)
    out = {}
    for name, path, fused in (("export", tmp_path / "m.safetensors", True),
                              ("checkpoint", reader_checkpoint, True),
                              ("plain", reader_checkpoint, False)):
        model, alphabet, _ = load_recognizer(path)
        model.encoder.set_fused(fused)
        out[name] = Transcriber(model.eval(), alphabet, decode, "fp32").read(images, widths)
        fused_here = fused and torch.backends.mkldnn.is_available()
        assert (model.encoder in cpu_inference._CACHE) == fused_here
    texts = {name: [r.text for r in readings] for name, readings in out.items()}
    assert texts["export"] == texts["checkpoint"] == texts["plain"]
    assert any(texts["plain"])  # the lines read as some text
    for a, b in zip(out["export"], out["plain"], strict=True):
        assert abs(a.confidence - b.confidence) < 1e-3
        assert [w.text for w in a.words] == [w.text for w in b.words]


# `model_config` as checkpoints and exports written before DecoderConfig hold it (flat: the
# decoder's kind and options next to `encoder`), for recognizer_files.CONFIG.
FLAT_CONFIG = {"encoder": {"preset": "small", "height": 32, "lstm_layers": None,
                           "lstm_hidden": 32, "dropout": 0.1},
               "decoder": "ctc", "hybrid_ctc_weight": 0.5, "attn_hidden": 256, "attn_emb": 64,
               "max_len": 128, "dropout": 0.1}


def test_checkpoints_and_exports_of_the_flat_config_shape_still_load(reader_checkpoint,
                                                                     tmp_path):
    ckpt = load(reader_checkpoint)
    assert ckpt["model_config"]["decoder"]["kind"] == "ctc"  # today's shape: nested
    old = tmp_path / "old.pt"
    checkpoint.save({**ckpt, "model_config": FLAT_CONFIG}, old)
    images, widths = torch.rand(2, 1, 32, 96), torch.tensor([96, 70])
    same, _, _ = load_recognizer(reader_checkpoint)
    expected = same.ctc_logits(images, widths)[0]
    model, _, _ = load_recognizer(old)
    assert model.cfg == CONFIG
    assert torch.equal(model.ctc_logits(images, widths)[0], expected)

    meta = export_recognizer(load(old), tmp_path / "m.safetensors")  # exported: nested
    assert meta["model_config"] == {"encoder": FLAT_CONFIG["encoder"], "decoder": {
        "kind": "ctc", "hybrid_ctc_weight": 0.5, "attn_hidden": 256, "attn_emb": 64,
        "max_len": 128, "dropout": 0.1}}

    # an export written before: its metadata holds the flat shape
    weights = {k: v.contiguous() for k, v in same.state_dict().items()}
    flat_meta = {**meta, "model_config": FLAT_CONFIG}
    save_file(weights, str(tmp_path / "old.safetensors"),
              metadata={META_KEY: json.dumps(flat_meta)})
    model, _, _ = load_recognizer(tmp_path / "old.safetensors")
    assert model.cfg == CONFIG
    assert torch.equal(model.ctc_logits(images, widths)[0], expected)


def test_a_model_config_htr_ssl_did_not_write_is_a_checkpoint_error(reader_checkpoint,
                                                                     tmp_path):
    ckpt = load(reader_checkpoint)
    for bad, says in (({**FLAT_CONFIG, "decoder": "transformer"}, "unknown decoder"),
                      ({**FLAT_CONFIG, "beam": 3}, "unknown option")):
        checkpoint.save({**ckpt, "model_config": bad}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=f"model_config is not one htr-ssl wrote.*{says}"):
            load_recognizer(tmp_path / "bad.pt")
