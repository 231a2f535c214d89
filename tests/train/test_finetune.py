"""Recognizer training end to end on a tiny folder dataset: checkpoints, fine-tuning modes."""

import json
from dataclasses import replace

import pytest
import torch

from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.pipeline import DataConfig, eval_split, make_loader, prepare
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.eval.evaluate import evaluate
from htr_ssl.inference.model_file import recognizer_from_checkpoint
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig
from htr_ssl.train import checkpoint, rundir
from htr_ssl.train.finetune import FinetuneConfig, TrainJob, job_options, train_recognizer
from htr_ssl.train.trainer_config import TrainerConfig


def _job(root, run_dir, steps=6, **kw) -> TrainJob:
    data = DataConfig(name="folder", root=str(root), height=32, batch_size=8,
                      augment=AugmentConfig("none"), num_workers=0, labels=kw.pop("labels", 1.0))
    model = RecognizerConfig(EncoderConfig("small", height=32), DecoderConfig("ctc"))
    trainer = TrainerConfig(max_steps=steps, val_every=3, warmup_steps=1, device="cpu",
                            progress=False)
    return TrainJob(data, model, trainer, run_dir, **kw)


def test_run_writes_results_and_checkpoint_reloads_identically(tiny_lines, tmp_path):
    summary = train_recognizer(_job(tiny_lines, tmp_path / "run"))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"cer", "wer", "wacc", "wacc_caseless", "line_acc"} <= set(metrics)
    assert metrics["n"] == summary.test["n"] == 6
    header = (run / "predictions.tsv").read_text().splitlines()[0]
    assert header == "id\treference\thypothesis\tcer\tconfidence\tword_confidences"
    assert Alphabet.load(run / "alphabet.json") == Alphabet.from_dict(
        checkpoint.load(run / "best.pt")["alphabet"])
    assert (run / "labeled_ids.tsv").exists() and (run / "splits.tsv").exists()

    ckpt = checkpoint.load(run / "best.pt")
    # best.pt is read for its weights: no optimizer state, a third of last.pt's size
    assert "optimizer" not in ckpt and "optimizer" in checkpoint.load(run / "last.pt")
    assert (run / "best.pt").stat().st_size < 0.5 * (run / "last.pt").stat().st_size
    a, alphabet = recognizer_from_checkpoint(ckpt)
    b, _ = recognizer_from_checkpoint(ckpt)
    data = prepare(DataConfig(name="folder", root=str(tiny_lines), height=32), None, alphabet)
    batch = next(iter(make_loader(data.test, alphabet, DataConfig(height=32), train=False)))
    a.eval(), b.eval()
    la, _ = a.ctc_logits(batch.images, batch.widths)
    lb, _ = b.ctc_logits(batch.images, batch.widths)
    assert torch.equal(la, lb)
    m, _ = evaluate(a, make_loader(data.test, alphabet, DataConfig(height=32), False), alphabet)
    assert m["cer"] == pytest.approx(metrics["cer"])


def test_same_seed_same_run(tiny_lines, tmp_path):
    train_recognizer(_job(tiny_lines, tmp_path / "a", steps=2))
    train_recognizer(_job(tiny_lines, tmp_path / "b", steps=2))
    a = checkpoint.load(tmp_path / "a" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_mode_keeps_encoder_and_full_mode_changes_it(tiny_lines, tmp_path):
    train_recognizer(_job(tiny_lines, tmp_path / "pre"))
    pretrained = checkpoint.load(tmp_path / "pre" / "last.pt")["model"]
    enc = {k: v for k, v in pretrained.items() if k.startswith("encoder.")}

    ft = FinetuneConfig(init_from=str(tmp_path / "pre" / "last.pt"), mode="frozen")
    train_recognizer(_job(tiny_lines, tmp_path / "frozen", finetune=ft, labels=0.5))
    frozen = checkpoint.load(tmp_path / "frozen" / "last.pt")["model"]
    for k, v in enc.items():
        assert torch.equal(frozen[k], v), f"{k} changed in frozen mode"
    heads = [k for k in pretrained if k.startswith("ctc.")]
    assert heads and any(not torch.equal(frozen[k], pretrained[k]) for k in heads)

    ft = FinetuneConfig(init_from=str(tmp_path / "pre" / "last.pt"), mode="full")
    train_recognizer(_job(tiny_lines, tmp_path / "full", finetune=ft))
    full = checkpoint.load(tmp_path / "full" / "last.pt")["model"]
    assert any(not torch.equal(full[k], v) for k, v in enc.items())


def test_alphabet_that_does_not_cover_the_data_names_characters(tiny_lines, caplog):
    small = Alphabet(tuple("abcdefghijklmnopqrstuvw "))  # the data also has x and y
    cfg = DataConfig(name="folder", root=str(tiny_lines), height=32)
    with pytest.raises(OutOfAlphabetError, match=r"'x': \d+ samples, e\.g\. \d{3}"):
        prepare(cfg, None, small)
    # evaluation keeps its true references and says which characters cannot be recognized
    test = prepare(cfg, None, Alphabet.from_texts(["abcdefghijklmnopqrstuvwxy "])).test
    kept = eval_split(test, small, cfg, "test")
    assert kept == test
    assert "'x'" in caplog.text and "can never be recognized" in caplog.text
    dropped = eval_split(test, small, DataConfig(oov="drop"), "test")
    assert all("x" not in s.text and "y" not in s.text for s in dropped)


def test_a_run_saved_with_the_flat_model_config_resumes(tiny_lines, tmp_path):
    """Checkpoints written before DecoderConfig hold `model_config` flat (the decoder's kind
    as `decoder`, its options beside `encoder`) and the options record with `decoder.kind`
    last: resumed today, neither reads as changed options."""
    run = tmp_path / "run"
    train_recognizer(_job(tiny_lines, run, steps=3))
    ckpt = checkpoint.load(run / "last.pt")
    decoder = dict(ckpt["model_config"]["decoder"])
    kind = decoder.pop("kind")
    ckpt["model_config"] = {"encoder": ckpt["model_config"]["encoder"], "decoder": kind,
                            **decoder}
    ckpt["options"]["decoder"] = {**decoder, "kind": kind}
    checkpoint.save(ckpt, run / "last.pt")
    job = _job(tiny_lines, run, steps=3, resume=run / "last.pt")
    assert rundir.changed_options(ckpt["options"], job_options(job)) == []
    assert train_recognizer(job).step == 3  # no "options differ"
    hybrid = replace(job, model=replace(job.model, decoder=DecoderConfig("hybrid")))
    assert rundir.changed_options(ckpt["options"], job_options(hybrid)) == [
        "decoder.kind 'ctc' -> 'hybrid'"]
