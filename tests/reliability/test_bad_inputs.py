"""The bad-input matrix: every way a user's data, config, checkpoint or disk can be wrong.

Each case does the bad thing and checks what the user sees: the error type (one the commands
print as a single `error: ...` line, see cli/_config.user_errors) or, for what is skipped and
counted instead, the warning; and that the message names the file / line / sample / option
and says how to fix it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from htr_ssl.cli._config import user_errors
from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.image import ImageReadError
from htr_ssl.data.pipeline import DataConfig, eval_split, make_loader, prepare
from htr_ssl.data.readers import read_dataset
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.data.sample import Sample, TextImageDataset
from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.models.recognizer import RecognizerConfig, build_recognizer
from htr_ssl.train import checkpoint
from htr_ssl.train.finetune import TrainJob, loss_fn, report_too_narrow, train_recognizer
from htr_ssl.train.loop import TrainerConfig, TrainingDiverged, fit

Names = Callable[[SimpleNamespace], Sequence[str]]


@dataclass(frozen=True)
class Case:
    trigger: Callable[[SimpleNamespace], object]
    error: type[BaseException] | None  # None: skipped with a warning, not an error
    names: Names  # what the message must name (file:line, sample id, option, ...)
    fix: str  # a regex for the remedy the message offers


# -- data files ---------------------------------------------------------------------------------

LINE = "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop\n"


def iam(ctx, lines: str = LINE, words: str | None = None, split: str | None = None) -> Path:
    root = ctx.tmp / "iam"
    (root / "ascii").mkdir(parents=True)
    (root / "ascii" / "lines.txt").write_text(lines)
    if words is not None:
        (root / "ascii" / "words.txt").write_text(words)
    if split is not None:
        (root / "train.uttlist").write_text(split)
    ctx.write_image(root / "lines" / "a01" / "a01-000u" / "a01-000u-00.png")
    return root


def manifest(ctx, image: Path, text: str = "some text") -> Path:
    path = ctx.tmp / "manifest.tsv"
    path.write_text(f"{image}\t{text}\tw1\ttrain\n")
    return path


def strict_load(ctx, content: bytes, name: str = "x.png") -> object:
    """Read one sample's image as training does, with data.strict_images=true."""
    path = ctx.tmp / name
    path.write_bytes(content)
    return TextImageDataset([Sample("line-7", path, "ab")], Alphabet(("a", "b")),
                            height=32, strict=True)[0]


def truncated_png(ctx) -> bytes:
    png = ctx.write_image(ctx.tmp / "whole.png", height=40, width=300).read_bytes()
    return png[: len(png) // 2]


def empty_transcription(ctx) -> None:
    ctx.write_image(ctx.tmp / "d" / "blank-line.png")
    (ctx.tmp / "d" / "blank-line.txt").write_text("  \n")
    ctx.write_image(ctx.tmp / "d" / "ok.png")
    (ctx.tmp / "d" / "ok.txt").write_text("fine")
    read_dataset("folder", ctx.tmp / "d")


def narrow_line(ctx) -> None:
    image = ctx.write_image(ctx.tmp / "narrow.png", height=32, width=20)
    samples = [Sample("narrow-1", image, "far too long a text"),
               Sample("wide-1", ctx.write_image(ctx.tmp / "w.png", height=32, width=400), "ok")]
    assert report_too_narrow(samples, DataConfig(height=32), build_encoder(
        EncoderConfig("small", 32)).wstride) == 1


def narrow_line_in_training(ctx) -> None:
    image = ctx.write_image(ctx.tmp / "narrow.png", height=32, width=20)
    alphabet = Alphabet.from_texts(["far too long"])
    loader = make_loader([Sample("narrow-1", image, "far too long")], alphabet,
                         DataConfig(height=32, batch_size=1), True)
    fit(build_recognizer(RecognizerConfig(EncoderConfig("small", 32)), alphabet), loss_fn,
        loader, TrainerConfig(max_steps=2, device="cpu", progress=False, precision="fp32"),
        ctx.tmp / "run")


# -- checkpoints --------------------------------------------------------------------------------


def other_architecture(ctx) -> None:
    saved = build_recognizer(RecognizerConfig(EncoderConfig("small", 32, lstm_layers=1,
                                                            lstm_hidden=64)),
                             Alphabet(("a", "b")))
    path = ctx.tmp / "run" / "best.pt"
    checkpoint.save({"model": saved.state_dict(), "config": {"model": {"preset": "small"}}},
                    path)
    checkpoint.load_encoder(build_encoder(EncoderConfig("small", 32, lstm_layers=2)), path)


def tiny_loader(ctx):
    samples = [Sample(f"s{i}", ctx.write_image(ctx.tmp / f"{i}.png", 32, 80), "ab")
               for i in range(4)]
    return make_loader(samples, Alphabet(("a", "b")), DataConfig(height=32, batch_size=2), True)


def fake_resumable(ctx, model: nn.Module, alphabet: Alphabet) -> Path:
    path = ctx.tmp / "old" / "last.pt"
    checkpoint.save({"model": model.state_dict(), "optimizer": {}, "scheduler": {}, "rng": {},
                     "loop": {}, "alphabet": alphabet.to_dict()}, path)
    return path


def resume_other_alphabet_size(ctx) -> None:
    cfg = RecognizerConfig(EncoderConfig("small", 32))
    hybrid = RecognizerConfig(EncoderConfig("small", 32), decoder="hybrid")
    old = fake_resumable(ctx, build_recognizer(hybrid, Alphabet(tuple("abcdef"))),
                         Alphabet(tuple("abcdef")))
    fit(build_recognizer(cfg, Alphabet(("a", "b"))), loss_fn, tiny_loader(ctx),
        TrainerConfig(max_steps=1, device="cpu", progress=False), ctx.tmp / "new", resume=old)


def job(ctx, run_dir: Path, **kw) -> TrainJob:
    data = DataConfig(name="folder", root=str(ctx.tiny), height=32)
    return TrainJob(data, RecognizerConfig(EncoderConfig("small", 32)),
                    TrainerConfig(max_steps=1, device="cpu", progress=False), run_dir, **kw)


def resume_data_outside_alphabet(ctx) -> None:
    alphabet = Alphabet(tuple("abcdefghijklmnopqrstuvw "))  # the data also has x and y
    model = build_recognizer(RecognizerConfig(EncoderConfig("small", 32)), alphabet)
    train_recognizer(job(ctx, ctx.tmp / "old", resume=fake_resumable(ctx, model, alphabet)))


def truncated_checkpoint(ctx) -> None:
    path = ctx.tmp / "last.pt"
    checkpoint.save({"model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:1500])
    checkpoint.load(path)


# -- training -----------------------------------------------------------------------------------


class NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def loss(self, images, *args):
        return (self.w * images.mean()) * float("nan"), {}


def nan_loss(ctx) -> None:
    fit(NaNModel(), lambda m, b: m.loss(b.images), tiny_loader(ctx),
        TrainerConfig(max_steps=5, max_bad_steps=2, device="cpu", progress=False),
        ctx.tmp / "nan")


def run_dir_under_a_file(ctx) -> None:
    (ctx.tmp / "results").write_text("a file, not a folder")
    train_recognizer(job(ctx, ctx.tmp / "results" / "run1"))


def read_only_run_dir(ctx) -> None:
    parent = ctx.tmp / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        checkpoint.ensure_writable(parent / "run1")
    finally:
        parent.chmod(0o700)


CASES = [
    pytest.param(Case(lambda c: read_dataset("iam", c.tmp / "nowhere"), DatasetNotFoundError,
                      lambda c: [str(c.tmp / "nowhere"), "does not exist"],
                      r"Download the dataset .*README\.md"), id="data-root-missing"),
    pytest.param(Case(lambda c: read_iam((c.tmp / "iam").mkdir() or c.tmp / "iam"),
                      DatasetNotFoundError, lambda c: ["ascii/lines.txt", str(c.tmp / "iam")],
                      r"datasets/iam/README\.md"), id="expected-file-missing"),
    pytest.param(Case(lambda c: read_iam(iam(c, LINE + "a01-000u-01 ok 154\n")),
                      DatasetFormatError, lambda c: ["lines.txt:2:", "a01-000u-01 ok 154"],
                      "Fix: correct or delete that line"), id="lines.txt-malformed-row"),
    pytest.param(Case(lambda c: read_iam(iam(c, words="a01-000u-00-00 maybe 1 2 3 4 5 6 AT A\n"),
                                         granularity="words"),
                      DatasetFormatError, lambda c: ["words.txt:1:", "'maybe'"],
                      "Fix: correct or delete that line"), id="words.txt-malformed-row"),
    pytest.param(Case(lambda c: read_iam(iam(c, split="a01-000u\na01-000x extra\n")),
                      DatasetFormatError, lambda c: ["train.uttlist:2:", "a01-000x extra"],
                      "Fix: put one id per line"), id="split-file-malformed-row"),
    pytest.param(Case(lambda c: read_dataset("tsv", (c.tmp / "m.tsv").write_text(
                          "a.png\tok\nb.png has no tab\n") and c.tmp / "m.tsv"),
                      DatasetFormatError, lambda c: ["m.tsv:2:", "b.png has no tab"],
                      "Fix: separate the fields with single tabs"), id="manifest-malformed-row"),
    pytest.param(Case(lambda c: read_pagexml((c.tmp / "p.xml").write_text(
                          "<PcGts>\n<Page>\n</PcGts>") and c.tmp, strict=True),
                      DatasetFormatError, lambda c: [f"{c.tmp / 'p.xml'}:3:", "not well-formed"],
                      "Fix: repair the XML"), id="xml-does-not-parse"),
    pytest.param(Case(lambda c: read_dataset("tsv", manifest(c, c.tmp / "gone.png"),
                                             strict=True),
                      DatasetNotFoundError, lambda c: [str(c.tmp / "gone.png"), "sample",
                                                       "does not exist"],
                      "Fix: restore the file"), id="image-missing"),
    pytest.param(Case(lambda c: read_dataset("tsv", manifest(c, c.tmp / "gone.png")), None,
                      lambda c: [str(c.tmp / "gone.png"), "does not exist",
                                 "skipped 1 samples"], "sample skipped"),
                 id="image-missing-skipped"),
    pytest.param(Case(lambda c: read_dataset("tsv", manifest(
                          c, (c.tmp / "zero.png").write_bytes(b"") or c.tmp / "zero.png"),
                          strict=True),
                      DatasetNotFoundError, lambda c: [str(c.tmp / "zero.png"), "0 bytes"],
                      "Fix: restore the file"), id="image-zero-sized"),
    pytest.param(Case(lambda c: strict_load(c, truncated_png(c)), ImageReadError,
                      lambda c: ["sample line-7", str(c.tmp / "x.png"), "truncated"],
                      "Fix: replace or remove the file"), id="image-truncated"),
    pytest.param(Case(lambda c: strict_load(c, b"%PDF-1.4 not an image"), ImageReadError,
                      lambda c: ["sample line-7", str(c.tmp / "x.png"), "cannot identify"],
                      "Fix: replace or remove the file"), id="image-not-an-image"),
    pytest.param(Case(lambda c: TextImageDataset([Sample("line-7", (c.tmp / "x.png").write_bytes(
                          b"junk") and c.tmp / "x.png", "ab")], None, 32)[0], None,
                      lambda c: ["skipping sample line-7", str(c.tmp / "x.png")],
                      "data.strict_images=false skips"), id="image-unreadable-skipped"),
    pytest.param(Case(empty_transcription, None,
                      lambda c: ["dropped 1 samples with empty transcriptions", "blank-line"],
                      "give them text"), id="transcription-empty"),
    pytest.param(Case(lambda c: prepare(DataConfig(name="folder", root=str(c.tiny), height=32),
                                        None, Alphabet(tuple("abcdefghijklmnopqrstuvw "))),
                      OutOfAlphabetError, lambda c: ["'x'", "samples, e.g. 0"],
                      r"Fix: rebuild the alphabet .* data\.oov=drop"),
                 id="characters-outside-alphabet"),
    pytest.param(Case(lambda c: eval_split(prepare(DataConfig(
                          name="folder", root=str(c.tiny), height=32)).test,
                          Alphabet(tuple("abcdefghijklmnopqrstuvw ")),
                          DataConfig(name="folder"), "test"), None,
                      lambda c: ["folder test split", "'x'", "samples, e.g. 0"],
                      "can never be recognized"), id="eval-characters-outside-alphabet"),
    pytest.param(Case(narrow_line, None, lambda c: ["narrow-1 (5 frames, needs 20)",
                                                    "1 of 2 training lines"],
                      "Fix: check those images and transcriptions, raise data.height"),
                 id="image-too-narrow-for-ctc"),
    pytest.param(Case(narrow_line_in_training, None,
                      lambda c: ["2 times a training sample was left out of the loss"],
                      "the warning before training names them"),
                 id="image-too-narrow-counted-in-training"),
    pytest.param(Case(lambda c: DataConfig(labels=0), ValueError, lambda c: ["data.labels=0"],
                      r"give a fraction .* in \(0, 1\]"), id="labels-zero"),
    pytest.param(Case(lambda c: DataConfig(labels=1.5), ValueError,
                      lambda c: ["data.labels=1.5"], "or a whole number of labeled lines"),
                 id="labels-fraction-above-one"),
    pytest.param(Case(lambda c: DataConfig(labels=-0.1), ValueError,
                      lambda c: ["data.labels=-0.1"], r"fraction .* \(0, 1\]"),
                 id="labels-negative"),
    pytest.param(Case(lambda c: DataConfig(height=-32), ValueError,
                      lambda c: ["data.height=-32"], "must be >= 1"), id="height-negative"),
    pytest.param(Case(lambda c: DataConfig(batch_size=0), ValueError,
                      lambda c: ["data.batch_size=0"], "must be >= 1"), id="batch-size-zero"),
    pytest.param(Case(lambda c: TrainerConfig(max_steps=-10), ValueError,
                      lambda c: ["trainer.max_steps=-10"], "must be >= 1"),
                 id="max-steps-negative"),
    pytest.param(Case(lambda c: TrainerConfig(checkpoint_every=-1), ValueError,
                      lambda c: ["trainer.checkpoint_every=-1"], "must be >= 0"),
                 id="checkpoint-every-negative"),
    pytest.param(Case(lambda c: DataConfig(name="iam_lines"), ValueError,
                      lambda c: ["data.name='iam_lines'"], "valid: alto, cvl, folder, .*tsv"),
                 id="unknown-dataset-name"),
    pytest.param(Case(lambda c: read_dataset("iam_lines", c.tmp), ValueError,
                      lambda c: ["'iam_lines'"], "known: alto, cvl, folder, .*tsv"),
                 id="unknown-dataset-name-library"),
    pytest.param(Case(other_architecture, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "run" / "best.pt"),
                                 "8 layers of the model are not in the checkpoint: lstm.fwd.1.",
                                 "layers differ in shape (checkpoint vs model): "
                                 "lstm.fwd.0.weight_ih_l0 (256, 256) vs (512, 256)"],
                      "Fix: use the model preset .* model=small"),
                 id="checkpoint-other-architecture"),
    pytest.param(Case(resume_other_alphabet_size, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "old" / "last.pt"), "ctc.proj.weight (7, 256) vs "
                                 "(3, 256)", "of the checkpoint are not in the model: attention."],
                      "a different alphabet size changes the output"),
                 id="resume-other-alphabet-size"),
    pytest.param(Case(resume_data_outside_alphabet, OutOfAlphabetError,
                      lambda c: [str(c.tmp / "old" / "last.pt"), "'x'", "samples, e.g. 0"],
                      "Resume with the data the run started with"),
                 id="resume-data-outside-alphabet"),
    pytest.param(Case(truncated_checkpoint, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "last.pt"), "truncated"],
                      r"Fix: use the other checkpoint of that run"), id="checkpoint-truncated"),
    pytest.param(Case(lambda c: checkpoint.load(c.tmp / "none.pt"), checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "none.pt"), "does not exist"],
                      "pass the path of a .pt file"), id="checkpoint-missing"),
    pytest.param(Case(run_dir_under_a_file, checkpoint.OutputDirError,
                      lambda c: [str(c.tmp / "results" / "run1")],
                      r"Fix: choose a writable folder \(run_dir="), id="run-dir-not-writable"),
    pytest.param(Case(nan_loss, TrainingDiverged,
                      lambda c: ["2 steps in a row", str(c.tmp / "nan" / "diverged.pt")],
                      "lower trainer.lr"), id="nan-loss"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_reported_with_what_and_how_to_fix(case: Case, tmp_path, tiny_lines,
                                                        write_image, caplog):
    ctx = SimpleNamespace(tmp=tmp_path, tiny=tiny_lines, write_image=write_image)
    with caplog.at_level(logging.WARNING):
        if case.error is None:
            case.trigger(ctx)
            message = caplog.text
        else:
            with pytest.raises(case.error) as err:
                case.trigger(ctx)
            assert isinstance(err.value, user_errors()), "would print a traceback"
            message = str(err.value)
    for name in case.names(ctx):
        assert name in message, f"{name!r} not in: {message}"
    assert re.search(case.fix, message, re.S), f"no fix /{case.fix}/ in: {message}"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_run_dir_is_refused_before_training(tmp_path):
    with pytest.raises(checkpoint.OutputDirError, match=r"locked/run1.*Fix: choose a writable"):
        read_only_run_dir(SimpleNamespace(tmp=tmp_path))
