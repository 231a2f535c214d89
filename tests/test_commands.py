"""The console commands end to end, as a user runs them (one subprocess each)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import initialize_config_dir
from safetensors import safe_open

from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.synthetic import GenerateConfig, generate

ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
# htr-ssl-pretrain's synimg=auto generates the synthetic lines: 15 of them here (in cwd/synth)
TINY_SYNIMG = ("synthetic.generate.out_dir=synth", "synthetic.generate.n_writers=5",
               "synthetic.generate.forms_per_writer=1", "synthetic.generate.lines_per_form=3",
               "synthetic.generate.workers=1")


def run(module: str, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", f"htr_ssl.cli.{module}", *args], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=600)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{module} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tiny_lines, tmp_path_factory):
    """htr-ssl-train from another working directory, with relative paths."""
    work = tmp_path_factory.mktemp("work")
    run("train", "data=folder", f"data.root={tiny_lines}", "data.height=32",
        "data.num_workers=0", "data.augment.recipe=none", "trainer.max_steps=4",
        "trainer.val_every=2", "trainer.progress=false", "hydra.run.dir=runs/t1", cwd=work)
    return work / "runs" / "t1"


def test_train_writes_a_complete_run(trained):
    for name in ("best.pt", "last.pt", "metrics.json", "predictions.tsv", "alphabet.json",
                 "splits.tsv", "labeled_ids.tsv", "log.csv", ".hydra/config.yaml"):
        assert (trained / name).exists(), name


def test_eval_with_beam_and_lexicon(trained, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("cat\ndog\nsun\nhat\nmap\npen\ncup\nbox\n")
    proc = run("evaluate", f"checkpoint={trained / 'best.pt'}", "decode.method=beam",
               f"decode.lexicon={words}", "decode.beam_size=4", "precision=bf16", cwd=tmp_path)
    out = trained / "eval_test_ctc_beam_lex"
    assert "CER" in proc.stdout and (out / "metrics.json").exists()
    assert json.loads((out / "metrics.json").read_text())["precision"] == "bf16"
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0] == "id\treference\thypothesis\tcer\tconfidence\tword_confidences"
    assert len(rows) > 1
    # with a lexicon every hypothesis word is a lexicon word, and has a confidence
    lexicon = set(words.read_text().split())
    for row in rows[1:]:
        _, _, hyp, _, conf, word_confs = row.split("\t")
        assert set(hyp.split()) <= lexicon and 0 <= float(conf) <= 1
        assert len(word_confs.split()) == len(hyp.split())


def test_eval_scores_any_labeled_set_as_a_whole(trained, tiny_lines, tmp_path):
    other = tmp_path / "other lines"
    other.mkdir()
    for png in sorted(tiny_lines.glob("*.png"))[:10]:
        for f in (png, png.with_suffix(".txt")):
            (other / f.name).write_bytes(f.read_bytes())
    proc = run("evaluate", f"checkpoint={trained / 'best.pt'}", "data=folder",
               f"data.root={other}", cwd=tmp_path)
    assert f"all of {other} (10 samples)" in proc.stdout
    scores = json.loads((trained / "eval_other lines_all_ctc_greedy" / "metrics.json")
                        .read_text())
    assert scores["split"] == "all" and scores["n"] == 10


def test_predict_folder_to_tsv(trained, tiny_lines, tmp_path):
    proc = run("predict", f"checkpoint={trained / 'best.pt'}", f"inputs=[{tiny_lines}]",
               "out=pred.tsv", cwd=tmp_path)
    rows = (tmp_path / "pred.tsv").read_text().splitlines()
    assert rows[0] == "path\tline\ttext\tconfidence\tword_confidences" and len(rows) == 31
    assert "000.png" in proc.stdout and "written: pred.tsv (30 lines)" in proc.stdout
    paths = [r.split("\t")[0] for r in rows[1:]]  # read in width-sorted batches, written in
    assert paths == sorted(str(p) for p in tiny_lines.glob("*.png"))  # input order
    proc = run("predict", f"checkpoint={trained / 'best.pt'}", f"inputs=[{tiny_lines}]",
               "sort_window=0", cwd=tmp_path, ok=False)
    assert proc.returncode == 2 and "sort_window=0; use 1 or more" in proc.stderr


def test_export_reads_as_the_checkpoint_and_shows_what_it_is(trained, tiny_lines, tmp_path):
    """htr-ssl-export: weights and metadata, no optimizer, no paths; predict and eval take it
    and read exactly what the checkpoint reads; htr-ssl-show prints what it is."""
    proc = run("export", f"checkpoint={trained / 'best.pt'}", "out=m.safetensors", cwd=tmp_path)
    model = tmp_path / "m.safetensors"
    assert f"written: {Path('m.safetensors')}" in proc.stdout and "test CER" in proc.stdout
    assert model.stat().st_size < 0.5 * (trained / "last.pt").stat().st_size
    with safe_open(str(model), "pt") as f:
        meta, keys = json.loads(f.metadata()["htr_ssl"]), set(f.keys())
    assert keys == set(torch.load(trained / "best.pt", weights_only=True)["model"])
    assert meta["data"]["dataset"] == "folder" and meta["test"]["split"] == "test"
    assert meta["model_config"]["decoder"]["kind"] == "ctc"
    assert meta["torch_version"] == torch.__version__
    assert str(tmp_path.anchor + "tmp") not in json.dumps(meta)  # no absolute paths
    texts = {}
    for name in ("best.pt", "m.safetensors"):
        path = trained / name if name == "best.pt" else model
        run("predict", f"checkpoint={path}", f"inputs=[{tiny_lines}]", f"out={name}.tsv",
            cwd=tmp_path)
        texts[name] = (tmp_path / f"{name}.tsv").read_text()
    assert texts["best.pt"] == texts["m.safetensors"]
    proc = run("show", str(model), cwd=tmp_path)
    shown = yaml.safe_load(proc.stdout)
    assert shown["kind"] == "recognizer" and shown["alphabet"]["size"] > 10
    assert shown["test"]["n"] == 6 and shown["htr_ssl_version"]
    proc = run("evaluate", f"checkpoint={model}", cwd=tmp_path, ok=False)
    assert proc.returncode == 2 and "give the labeled set to score" in proc.stderr
    proc = run("evaluate", f"checkpoint={model}", "data=folder", f"data.root={tiny_lines}",
               cwd=tmp_path)
    assert "all of" in proc.stdout and "(30 samples)" in proc.stdout
    proc = run("export", f"checkpoint={trained / 'best.pt'}", "out=m.safetensors", cwd=tmp_path,
               ok=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_user_errors_are_one_line_and_exit_2(tmp_path):
    proc = run("train", "data=iam", f"data.root={tmp_path / 'nowhere'}", "trainer.progress=false",
               f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path, ok=False)
    assert proc.returncode == 2
    assert "error: IAM: expected ascii/lines.txt" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run("evaluate", "checkpoint=missing.pt", cwd=tmp_path, ok=False)
    assert proc.returncode == 2 and "missing.pt does not exist" in proc.stderr


def test_torchrun_two_processes(tiny_lines, tmp_path):
    """DDP over gloo on the CPU: two ranks train one model; rank 0 writes the run."""
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", "-m", "htr_ssl.cli.train", "data=folder",
         f"data.root={tiny_lines}", "data.height=32", "data.num_workers=0", "data.batch_size=4",
         "trainer.max_steps=3", "trainer.val_every=3", "trainer.progress=false",
         "trainer.device=cpu", f"hydra.run.dir={tmp_path / 'ddp'}"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run: ") == 1
    assert (tmp_path / "ddp" / "last.pt").exists() and (tmp_path / "ddp" / "metrics.json").exists()
    log = (tmp_path / "ddp" / "train.log").read_text()  # both ranks share Hydra's log file
    assert log.count("labeled train (of") == 1, log  # only rank 0's info lines are in it


def test_pretrain_then_finetune_chain(tiny_lines, tmp_path):
    """htr-ssl-pretrain on images alone, then htr-ssl-train fine-tunes its encoder."""
    images = tmp_path / "scans"  # the same lines without any transcription next to them
    images.mkdir()
    for png in tiny_lines.glob("*.png"):
        (images / png.name).write_bytes(png.read_bytes())
    run("pretrain", "data=images", f"data.root={images}", "data.height=32",
        "data.num_workers=0", "data.batch_size=8", "pretext=[rotation,flip]",
        "pretext.flip.weight=0.5", "trainer.max_steps=4", "trainer.val_every=2",
        "trainer.progress=false", "hydra.run.dir=runs/pre", *TINY_SYNIMG,
        f"extra_images=[{tiny_lines}]", cwd=tmp_path)
    pre = tmp_path / "runs" / "pre"
    ckpt = torch.load(pre / "best.pt", weights_only=False)
    assert ckpt["kind"] == "pretext" and ckpt["method"] == "rotation+flip"
    assert ckpt["pretexts"]["flip"]["weight"] == 0.5
    # synimg=auto (the recipe) on a user's folder: the generated lines joined the pool, and so
    # did every image of the extra folder (30), into training only
    pool = (pre / "pretrain_ids.tsv").read_text().splitlines()
    generated = (tmp_path / "synth" / "ascii" / "lines.txt").read_text().splitlines()
    n_generated = sum(1 for line in generated if line and not line.startswith("#"))
    assert n_generated == 15 and len(pool) == 27 + n_generated + 30  # 30 less 3 for val
    proc = run("train", "data=folder", f"data.root={tiny_lines}", "data.height=32",
               "data.num_workers=0", "data.labels=0.5", f"finetune.init_from={pre / 'best.pt'}",
               "finetune.freeze_steps=1", "trainer.max_steps=3", "trainer.val_every=3",
               "trainer.progress=false", "hydra.run.dir=runs/ft", cwd=tmp_path)
    assert "WAcc" in proc.stdout
    run_info = json.loads((tmp_path / "runs" / "ft" / "metrics.json").read_text())["run"]
    assert run_info["method"] == "rotation+flip" and run_info["labels"] == 0.5
    tuned = torch.load(tmp_path / "runs" / "ft" / "best.pt", weights_only=False)["model"]
    key = "encoder.cnn.0.conv.weight"  # held still 1 step, then two small steps away
    assert 0 < (tuned[key] - ckpt["model"][key]).abs().max() < 0.02


def test_pretrain_adds_no_synthetic_images_to_the_synthetic_data(tmp_path):
    """synimg=auto: data=synthetic is the generated handwriting already, so nothing is added
    (and nothing generated); synimg=true adds them anyway; anything else is refused."""
    from htr_ssl.cli.pretrain import use_synimg

    assert [use_synimg("auto", c) for c in ("synthetic", "folder", None)] == [False, True, True]
    assert use_synimg(False, "folder") is False and use_synimg(True, "synthetic") is True
    with pytest.raises(ValueError, match=r"synimg='yes'.*auto, true or false"):
        use_synimg("yes", "folder")
    data = tmp_path / "data"
    generate(GenerateConfig(out_dir=str(data), n_writers=5, forms_per_writer=1,
                            lines_per_form=3, workers=1))
    run("pretrain", "data=synthetic", f"data.root={data}", "data.height=32",
        "data.num_workers=0", "data.batch_size=4", "pretext=rotation", "trainer.max_steps=1",
        "trainer.val_every=1", "trainer.progress=false", "hydra.run.dir=runs/pre",
        *TINY_SYNIMG, cwd=tmp_path)
    assert not (tmp_path / "synth").exists()
    assert "adding" not in (tmp_path / "runs" / "pre" / "pretrain.log").read_text()


def test_pretrain_rejects_an_unknown_pretext(tmp_path):
    proc = run("pretrain", "+pretext.rotatoin={}", "trainer.progress=false",
               f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path, ok=False)
    assert proc.returncode == 2 and "available:" in proc.stderr and "rotation" in proc.stderr


def test_torchrun_contrastive_pretraining(tiny_lines, tmp_path):
    """DDP pretraining over gloo: SeqCLR gathers negatives across the 2 ranks, leaves the BiLSTM
    unused (contextual=false; find_unused_parameters=auto handles it), and validates on rank 0
    alone (where a gather would wait forever for the other rank)."""
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "htr_ssl.cli.pretrain",
           "pretext=seqclr", "pretext.seqclr.contextual=false", "data=folder",
           f"data.root={tiny_lines}", "data.height=32", "data.num_workers=0",
           "data.batch_size=4", "trainer.max_steps=2", "trainer.val_every=2",
           "trainer.progress=false", "trainer.device=cpu", f"hydra.run.dir={tmp_path / 'pre'}",
           *TINY_SYNIMG]  # both ranks need the generated lines; one writes them
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # torchrun and both ranks: a hang must not outlive the test
        proc.communicate()
        raise AssertionError("DDP pretraining hung (a collective on one rank only?)") from None
    assert proc.returncode == 0, err[-3000:]
    assert out.count("pretrained seqclr for 2 steps") == 1
    best = torch.load(tmp_path / "pre" / "best.pt", weights_only=False)
    assert best["method"] == "seqclr" and best["loop"]["step"] == 2
    assert "val/seqclr/acc" in (tmp_path / "pre" / "log.csv").read_text()


def test_demo_end_to_end_on_tiny_settings(tmp_path):
    """`make demo`'s command with its own config, shrunk: generates words, pretrains the
    recommended start, fine-tunes it and scratch at two fractions with a hybrid decoder, prints
    the tables and a plain verdict, writes report and heat maps (attention maps included)."""
    from htr_ssl.cli.demo import recommended_method

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        rec = recommended_method()
    cell = ["data.height=32", "data.reader_args.granularity=words", "data.word_images=true",
            "data.augment.recipe=none", "data.num_workers=0", "pretrain.trainer.max_steps=2",
            "pretrain.trainer.val_every=2", "trainer.max_steps=2", "trainer.val_every=2",
            "trainer.progress=false", "pretrain.trainer.progress=false", "decoder=hybrid",
            "finetune.freeze_steps=1"]
    proc = run("demo", "out=out", "methods=[scratch,recommended]", "labels=[0.5,1.0]",
               "heatmap_lines=2", "generate.out_dir=data", "generate.n_writers=10",
               "generate.forms_per_writer=1", "generate.lines_per_form=2",
               "generate.progress=false", "generate.workers=1",
               "cell=[" + ",".join(f"'{c}'" for c in cell) + "]", cwd=tmp_path)
    out = tmp_path / "out"
    assert "| scratch |" in proc.stdout and f"| {rec} |" in proc.stdout
    assert f"of the labels: {rec} CER" in proc.stdout and "docs/results.md" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"everything is in {Path('out')}")
    for name in ("table.md", "table.csv", "table.tex", "plot.png"):
        assert (out / "report" / name).stat().st_size > 0, name
    for method in ("scratch", rec):
        for labels in ("0.5", "1.0"):
            run_dir = out / "synthetic" / method / "full" / f"labels_{labels}" / "seed_0"
            scores = json.loads((run_dir / "metrics.json").read_text())
            assert scores["split"] == "test" and scores["n"] > 0
    assert (out / "pretrain" / "synthetic" / rec / "best.pt").exists()
    assert not (out / "pretrain" / "synthetic" / "scratch").exists()
    assert (out / "heatmaps" / "sheet_gradcam.png").exists()
    assert len(list((out / "heatmaps" / rec).glob("*.gradcam.png"))) == 2
    assert len(list((out / "heatmaps" / rec).glob("*.attention.png"))) == 2
