"""The bad-input matrix: every way a user's data, config, checkpoint or disk can be wrong.

Each case does the bad thing and checks what the user sees: the error type (one the commands
print as a single `error: ...` line, see cli/_errors.user_errors) or, for what is skipped and
counted instead, the warning; and that the message names the file / line / sample / option
and says how to fix it. A second table has the files that used to load silently wrong (16-bit,
transparent, EXIF-rotated images, UTF-16 text, ...): they must load as a viewer shows them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bad_files import (
    bomb_png,
    evil_checkpoint,
    gray16,
    multipage_tiff,
    rotated_jpeg,
    transparent,
)
from omegaconf import OmegaConf
from torch import nn

from htr_ssl.cli._config import resume_and_run_dir, to_dataclass
from htr_ssl.cli._errors import user_errors
from htr_ssl.cli.evaluate import output_dir
from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.image import ImageReadError, load_gray
from htr_ssl.data.pipeline import DataConfig, check_split, eval_split, make_loader, prepare
from htr_ssl.data.readers import read_dataset
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.data.sample import Sample, TextImageDataset
from htr_ssl.data.transforms import AugmentConfig, as_callable, build_augment
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber, read_in_input_order
from htr_ssl.inference.inputs import Inputs
from htr_ssl.inference.outputs import record_file
from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.models.recognizer import (
    DecoderConfig,
    RecognizerConfig,
    build_recognizer,
    recognizer_loss,
)
from htr_ssl.train import checkpoint
from htr_ssl.train.finetune import TrainJob, report_too_narrow, train_recognizer
from htr_ssl.train.loop import TrainingDiverged, fit
from htr_ssl.train.trainer_config import TrainerConfig

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


def load_in_training(ctx, path: Path, sample_id: str = "line-7", strict: bool = False,
                     recipe: str = "htr") -> object:
    """One sample's image as a training loader reads it: augmented (every augmentation on), or
    with data.strict_images=true."""
    augment = as_callable(build_augment(AugmentConfig(recipe, 1.0)))
    dataset = TextImageDataset([Sample(sample_id, path, "ab")], Alphabet(("a", "b")), height=32,
                               augment=augment, strict=strict)
    return [dataset[(0, seed)] for seed in range(8)]


def degenerate_polygon(ctx, points: str = "5,5 5,5 5,5") -> object:
    """A PAGE TextLine whose polygon is three times the same point (or `points`)."""
    ctx.write_image(ctx.tmp / "page.png", height=100, width=200)
    (ctx.tmp / "p.xml").write_text(
        '<PcGts><Page imageFilename="page.png"><TextRegion><TextLine id="l1">'
        f'<Coords points="{points}"/><TextEquiv><Unicode>ab</Unicode></TextEquiv>'
        "</TextLine></TextRegion></Page></PcGts>")
    samples = read_pagexml(ctx.tmp)
    return TextImageDataset(samples, Alphabet(("a", "b")), height=32)[0] if samples else None


def bomb_in_training(ctx) -> None:
    """A decompression bomb among good lines: the loader's width buckets and the reads."""
    bomb = bomb_png(ctx.tmp / "bomb.png")
    samples = [Sample("bomb-1", bomb, "ab"), *(Sample(f"s{i}", ctx.write_image(
        ctx.tmp / f"{i}.png", 32, 80), "ab") for i in range(3))]
    loader = make_loader(samples, Alphabet(("a", "b")), DataConfig(height=32, batch_size=4), True)
    assert sum(len(b) for b in loader) == 3


def bomb_in_predict(ctx) -> None:
    """htr-ssl-predict's reading: a bomb alone in its batch, the other lines still read."""
    alphabet = Alphabet(("a", "b"))
    model = build_recognizer(RecognizerConfig(EncoderConfig("small", 32)), alphabet)
    samples = [Sample(str(p), p, "") for p in (
        ctx.write_image(ctx.tmp / "a.png", 32, 80), bomb_png(ctx.tmp / "bomb.png"),
        ctx.write_image(ctx.tmp / "c.png", 32, 90))]
    got = list(read_in_input_order(Transcriber(model, alphabet, DecodeConfig()), samples, 32,
                                   batch_size=1))
    assert [sid for sid, _ in got] == [str(ctx.tmp / "a.png"), str(ctx.tmp / "c.png")]


def xml_warning(ctx) -> None:
    """A broken PAGE file among good ones is skipped with a one-line warning, no traceback."""
    (ctx.tmp / "p.xml").write_text("<PcGts>\n<Page>\n</PcGts>")
    assert read_pagexml(ctx.tmp) == []
    assert not [r for r in ctx.caplog.records if r.exc_info], "a traceback was logged"


def multi_line_txt(ctx) -> None:
    ctx.write_image(ctx.tmp / "d" / "a.png")
    (ctx.tmp / "d" / "a.txt").write_text("first line\nsecond line\n")
    read_dataset("folder", ctx.tmp / "d")


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
    fit(build_recognizer(RecognizerConfig(EncoderConfig("small", 32)), alphabet), recognizer_loss,
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
    hybrid = RecognizerConfig(EncoderConfig("small", 32), decoder=DecoderConfig("hybrid"))
    old = fake_resumable(ctx, build_recognizer(hybrid, Alphabet(tuple("abcdef"))),
                         Alphabet(tuple("abcdef")))
    fit(build_recognizer(cfg, Alphabet(("a", "b"))), recognizer_loss, tiny_loader(ctx),
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


def code_in_checkpoint(ctx) -> None:
    path = evil_checkpoint(ctx.tmp / "best.pt", ctx.tmp / "marker")
    try:
        checkpoint.load(path)
    finally:
        assert not (ctx.tmp / "marker").exists(), "the checkpoint ran code"


def pretext_checkpoint_resumed_as_recognizer(ctx) -> None:
    path = ctx.tmp / "pre" / "last.pt"
    checkpoint.save({"model": {}, "kind": "pretext", "optimizer": {}, "scheduler": {},
                     "rng": {}, "loop": {}}, path)
    train_recognizer(job(ctx, path.parent, resume=path))


def finished_run_restarted(ctx) -> None:
    run = ctx.tmp / "run"
    checkpoint.save({"model": {}}, run / "best.pt")  # its last.pt was deleted
    checkpoint.mark_done(run, {"step": 1})
    train_recognizer(job(ctx, run))


def best_without_last(ctx) -> None:
    run = ctx.tmp / "run"
    checkpoint.save({"model": {}}, run / "best.pt")
    train_recognizer(job(ctx, run, resume="auto"))


def resume_with_other_options(ctx) -> None:
    run = ctx.tmp / "run"
    train_recognizer(job(ctx, run))
    (run / checkpoint.DONE).unlink()  # interrupted after its last checkpoint
    before = (run / "labeled_ids.tsv").read_text()
    other = job(ctx, run, resume=run / "last.pt")
    try:
        train_recognizer(replace(other, data=replace(other.data, labels=0.5)))
    finally:
        assert (run / "labeled_ids.tsv").read_text() == before, "the old run was changed"


def weights_blow_up(ctx) -> None:
    """A learning rate so high that finite-loss steps make the weights NaN/inf."""
    alphabet = Alphabet(("a", "b"))
    run = ctx.tmp / "run"
    try:
        fit(build_recognizer(RecognizerConfig(EncoderConfig("small", 32)), alphabet),
            recognizer_loss,
            tiny_loader(ctx), TrainerConfig(lr=1e10, max_steps=6, val_every=3, warmup_steps=0,
                                            device="cpu", progress=False, precision="fp32"),
            run, validate=lambda m: {"cer": 50.0})
    finally:
        assert not (run / "best.pt").exists() or all(
            torch.isfinite(v).all() for v in checkpoint.load(run / "best.pt")["model"].values())


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


def eval_output(ctx) -> None:
    (ctx.tmp / "results").write_text("a file, not a folder")
    cfg = OmegaConf.create({"out_dir": str(ctx.tmp / "results" / "eval"), "checkpoint": "x.pt",
                            "split": "test"})
    output_dir(cfg, DecodeConfig(), "ctc")


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
    pytest.param(Case(multi_line_txt, DatasetFormatError, lambda c: [f"{c.tmp / 'd' / 'a.txt'}:2:",
                                                     "2 lines of text", "'second line'"],
                      "Fix: put the transcription on one line"), id="txt-two-lines"),
    pytest.param(Case(xml_warning, None, lambda c: [f"{c.tmp / 'p.xml'}:3:", "not well-formed",
                                                    "skipping XML file"],
                      "Fix: repair the XML"), id="xml-does-not-parse-warning-one-line"),
    pytest.param(Case(lambda c: load_in_training(c, c.write_image(c.tmp / "x.png", 1, 1),
                                                 strict=True), ImageReadError,
                      lambda c: ["sample line-7", str(c.tmp / "x.png"), "1x1 pixels"],
                      "too small to hold text. Fix: replace or remove the file"),
                 id="image-1x1"),
    pytest.param(Case(lambda c: load_in_training(c, c.write_image(c.tmp / "x.png", 1, 1)), None,
                      lambda c: ["skipping sample line-7", str(c.tmp / "x.png"), "1x1 pixels"],
                      "data.strict_images=false skips"), id="image-1x1-skipped"),
    pytest.param(Case(degenerate_polygon, None,
                      lambda c: ["p.xml line l1", "has 1 distinct points"],
                      "Fix: correct those lines' coordinates"), id="page-polygon-one-point"),
    pytest.param(Case(lambda c: degenerate_polygon(c, "5,5 6,5 7,5"), None,
                      lambda c: ["skipping sample p/l1", "(5, 5, 8, 6)", "3x1 pixels"],
                      "Fix: correct the line's coordinates"), id="page-polygon-flat"),
    pytest.param(Case(bomb_in_training, None, lambda c: ["skipping sample bomb-1",
                                                         "decompression bomb"],
                      "data.strict_images=false skips"), id="image-bomb-skipped-in-training"),
    pytest.param(Case(bomb_in_predict, None, lambda c: [str(c.tmp / "bomb.png"),
                                                        "1 of 3 images were unreadable"],
                      "see the warnings naming them"), id="image-bomb-skipped-in-predict"),
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
    pytest.param(Case(lambda c: TrainerConfig(lr=float("inf")), ValueError,
                      lambda c: ["trainer.lr=inf"], "must be a finite number"), id="lr-inf"),
    pytest.param(Case(lambda c: to_dataclass(DataConfig, OmegaConf.create(
                          {"data": {"labels": "abc"}}).data), ValueError,
                      lambda c: ["data.labels='abc'"], "give a number"), id="labels-not-a-number"),
    pytest.param(Case(lambda c: DataConfig(labels=None), ValueError, lambda c: ["data.labels"],
                      r"give a fraction .* in \(0, 1\]"), id="labels-null"),
    pytest.param(Case(lambda c: check_split("foo"), ValueError, lambda c: ["split='foo'"],
                      "use train, val, test"), id="eval-split-unknown"),
    pytest.param(Case(lambda c: resume_and_run_dir(OmegaConf.create(
                          {"resume": None, "fork": True, "run_dir": str(c.tmp)})), ValueError,
                      lambda c: ["fork=true needs resume="], "continues that checkpoint"),
                 id="fork-without-resume"),
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
    pytest.param(Case(code_in_checkpoint, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "best.pt"), "posix.system", "would run code"],
                      "Fix: use a best.pt / last.pt written by htr-ssl"),
                 id="checkpoint-runs-code"),
    pytest.param(Case(pretext_checkpoint_resumed_as_recognizer, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "pre" / "last.pt"), "'pretext' checkpoint"],
                      "Fix: .* finetune.init_from=.* htr-ssl-pretrain resume="),
                 id="resume-recognizer-from-pretext-checkpoint"),
    pytest.param(Case(finished_run_restarted, FileExistsError,
                      lambda c: [str(c.tmp / "run"), "finished run", "'done' marker"],
                      r"Fix: choose a new run directory \(hydra.run.dir="),
                 id="new-run-in-finished-folder"),
    pytest.param(Case(best_without_last, FileExistsError,
                      lambda c: [str(c.tmp / "run"), "best.pt", "no last.pt"],
                      "a new run would overwrite it. Fix: choose a new run directory .* "
                      "finetune.init_from="),
                 id="new-run-over-best-checkpoint"),
    pytest.param(Case(resume_with_other_options, checkpoint.CheckpointError,
                      lambda c: [str(c.tmp / "run" / "last.pt"), "data.labels 1.0 -> 0.5"],
                      "Fix: resume with the run's own options, or add fork=true"),
                 id="resume-with-changed-options"),
    pytest.param(Case(lambda c: record_file(str(c.tmp), False, Inputs([], [])), ValueError,
                      lambda c: [f"out={c.tmp} is a folder"], "give the file to write"),
                 id="predict-out-is-a-folder"),
    pytest.param(Case(lambda c: record_file(str(c.tmp / "m.txt") if (c.tmp / "m.txt").write_text(
                          "keep") else "", False, Inputs([], [])), FileExistsError,
                      lambda c: [f"out={c.tmp / 'm.txt'} already exists"],
                      "Fix: choose another out=, or add overwrite=true"),
                 id="predict-out-exists"),
    pytest.param(Case(lambda c: eval_output(c), checkpoint.OutputDirError,
                      lambda c: [str(c.tmp / "results" / "eval")],
                      r"Fix: choose a writable folder \(out_dir=\.\.\.\)"),
                 id="eval-out-dir-not-writable"),
    pytest.param(Case(run_dir_under_a_file, checkpoint.OutputDirError,
                      lambda c: [str(c.tmp / "results" / "run1")],
                      r"Fix: choose a writable folder \(run_dir="), id="run-dir-not-writable"),
    pytest.param(Case(weights_blow_up, TrainingDiverged,
                      lambda c: ["weights became NaN/inf", str(c.tmp / "run" / "diverged.pt")],
                      "lower trainer.lr"), id="weights-nan-with-finite-loss"),
    pytest.param(Case(nan_loss, TrainingDiverged,
                      lambda c: ["2 steps in a row", str(c.tmp / "nan" / "diverged.pt")],
                      "lower trainer.lr"), id="nan-loss"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_reported_with_what_and_how_to_fix(case: Case, tmp_path, tiny_lines,
                                                        write_image, caplog):
    ctx = SimpleNamespace(tmp=tmp_path, tiny=tiny_lines, write_image=write_image, caplog=caplog)
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


# -- files that used to load silently wrong: now they load as a viewer shows them -------------


def sixteen_bit(ctx, suffix: str) -> None:
    img = load_gray(gray16(ctx.tmp / f"x{suffix}", value=40_000))
    assert img.dtype == np.uint8 and (img == round(40_000 / 257)).all()  # not all white


def transparent_background(ctx, mode: str) -> None:
    img = load_gray(transparent(ctx.tmp / "x.png", mode))
    assert (img[0] == 255).all() and (img[10, 10:50] == 0).all()  # white paper, black ink


def exif_rotated(ctx) -> None:
    path = rotated_jpeg(ctx.tmp / "x.jpg", height=20, width=60)
    assert load_gray(path).shape == (60, 20)  # turned as the EXIF orientation says
    assert Sample("x", path, "").size() == (20, 60)  # (width, height) as displayed


def multipage(ctx) -> None:
    img = load_gray(multipage_tiff(ctx.tmp / "x.tif"))
    assert (img == 220).all()  # the first page, as documented
    assert f"image {ctx.tmp / 'x.tif'} has 2 pages: only the first is read" in ctx.caplog.text


def utf16_txt(ctx, encoding: str) -> None:
    ctx.write_image(ctx.tmp / "d" / "a.png")
    data = "Grüße\r\n".encode(encoding)
    (ctx.tmp / "d" / "a.txt").write_bytes(data if encoding == "utf-16" else b"\xfe\xff" + data)
    samples = read_dataset("folder", ctx.tmp / "d")
    assert [s.text for s in samples] == ["Grüße"]
    assert Alphabet.from_texts(s.text for s in samples).chars == tuple(sorted("Grüße"))


def tiny_image_augmented(ctx) -> None:
    for recipe in ("htr", "seqclr"):  # GridDistortion, Perspective divided by the size
        items = load_in_training(ctx, ctx.write_image(ctx.tmp / "x.png", 2, 3), recipe=recipe)
        assert all(it is not None and it["image"].shape[0] == 32 for it in items)


LOADS_RIGHT = [
    pytest.param(lambda c: sixteen_bit(c, ".png"), id="image-16-bit-png"),
    pytest.param(lambda c: sixteen_bit(c, ".tif"), id="image-16-bit-tiff"),
    pytest.param(lambda c: transparent_background(c, "RGBA"), id="image-rgba-transparent"),
    pytest.param(lambda c: transparent_background(c, "LA"), id="image-la-transparent"),
    pytest.param(exif_rotated, id="image-exif-orientation-6"),
    pytest.param(multipage, id="image-multi-page-tiff"),
    pytest.param(lambda c: utf16_txt(c, "utf-16"), id="txt-utf-16-le-bom"),
    pytest.param(lambda c: utf16_txt(c, "utf-16-be"), id="txt-utf-16-be-bom"),
    pytest.param(tiny_image_augmented, id="image-tiny-augmented"),
]


@pytest.mark.parametrize("check", LOADS_RIGHT)
def test_input_that_loaded_wrong_loads_as_shown(check, tmp_path, write_image, caplog):
    with caplog.at_level(logging.WARNING):
        check(SimpleNamespace(tmp=tmp_path, write_image=write_image, caplog=caplog))
