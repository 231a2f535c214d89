"""The command line itself: --help and --version of every console command, options checked
before Hydra runs (typos, group choices, required options), names with any characters, and no
run folder left by a command that failed before doing work. One subprocess each, as a user
runs them."""

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from htr_ssl.cli._checks import as_option, check_arguments, literal

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = dict(re.findall(r'^(htr-ssl-[\w-]+) = "([\w.:]+)"$',
                          (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1]
                          .split("\n[")[0], re.M))
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console command `script` (htr-ssl-train, ...) through its entry point."""
    module, _, func = SCRIPTS[script].partition(":")
    code = f"import sys; sys.argv[0] = {script!r}; from {module} import {func}; {func}()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_command_has_its_own_help(script, tmp_path):
    """Each command lists the options of its own config, with the config's comments, and
    makes no folder."""
    proc = run(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = proc.stdout.split("Options (configs/")[1].split(")")[0]
    assert config.endswith(".yaml")
    text = (ROOT / "configs" / config).read_text()
    assert proc.stdout.startswith(text.splitlines()[0].lstrip("# ").split(":")[0])
    assert f"Usage: {script} " in proc.stdout
    first = next(line for line in text.splitlines()
                 if line and not line.startswith(("#", " ", "defaults", "hydra")))
    assert f"  {first.split(':')[0]}=" in proc.stdout  # its first own option
    assert "Hydra" not in proc.stdout.split("Usage:")[0]
    assert list(tmp_path.iterdir()) == []


def test_help_shows_comments_and_the_chosen_group(tmp_path):
    proc = run("htr-ssl-predict", "--help", cwd=tmp_path)
    row = next(r for r in proc.stdout.splitlines() if r.startswith("  inputs_file="))
    assert "one input per line, taken as written" in row
    assert "Required: checkpoint=..." in proc.stdout
    proc = run("htr-ssl-train", "data=pagexml", "--help", cwd=tmp_path)
    assert "data=pagexml  (choices: " in proc.stdout and "iam_words" in proc.stdout
    row = next(r for r in proc.stdout.splitlines() if r.startswith("  data.val_frac="))
    assert "fallback split" in row


def test_version_is_htr_ssl_s(tmp_path):
    proc = run("htr-ssl-eval", "--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == \
        f"htr-ssl-eval (htr-ssl) {version('htr-ssl')}"


def test_a_misspelled_option_gets_the_valid_name(tmp_path):
    line = one_line_error(run("htr-ssl-train", "data.hieght=32", cwd=tmp_path))
    assert "data.hieght is not an option of htr-ssl-train; did you mean data.height?" in line
    line = one_line_error(run("htr-ssl-pretrain", "trainer.max_step=3", cwd=tmp_path))
    assert "did you mean trainer.max_steps" in line
    assert list(tmp_path.iterdir()) == []  # no run folder


def test_an_unknown_group_choice_lists_the_choices(tmp_path):
    line = one_line_error(run("htr-ssl-train", "data=iamm", cwd=tmp_path))
    assert "data=iamm is not a choice; did you mean data=iam? choices: alto, " in line
    line = one_line_error(run("htr-ssl-pretrain", "pretext=[masked,rotatoin]", cwd=tmp_path))
    assert "did you mean pretext=rotation?" in line and "seqclr" in line
    assert list(tmp_path.iterdir()) == []


def test_the_shared_decoder_base_is_no_choice_and_its_comments_are_the_help():
    """configs/decoder/_common.yaml holds the options the three decoder configs share."""
    problem = check_arguments("train", "htr-ssl-train", ["decoder=_common"])
    assert problem.startswith("decoder=_common is not a choice") and "_common," not in problem
    from htr_ssl.cli._help import command_help

    text = command_help("train", "htr-ssl-train", {"decoder": ["hybrid"]})
    assert "decoder=hybrid  (choices: attention, ctc, hybrid; " in text and "_common" not in text
    assert "decoder.kind=hybrid" in text and "decoder.defaults" not in text
    assert "hybrid only: loss = w * ctc + (1 - w) * attention" in text
    assert "longest text it decodes" in text  # decoder.max_len's comment, from the base


def test_the_shared_data_base_is_no_choice():
    """configs/data/_common.yaml, which every data config starts from, is not offered."""
    problem = check_arguments("train", "htr-ssl-train", ["data=_common"])
    assert problem.startswith("data=_common is not a choice") and "_common," not in problem
    from htr_ssl.cli._help import command_help

    text = command_help("train", "htr-ssl-train", {"data": ["iam"]})
    assert "data=iam  (choices: alto, cremma, " in text and "_common" not in text
    assert "data.name=iam" in text and "the reader: iam | " in text  # the base's comments
    assert "data.defaults" not in command_help("train", "htr-ssl-train", {"data": ["cremma"]})


def test_a_missing_required_option_is_one_line(tmp_path):
    line = one_line_error(run("htr-ssl-predict", cwd=tmp_path))
    assert "htr-ssl-predict needs checkpoint=... (best.pt / last.pt of a run" in line
    line = one_line_error(run("htr-ssl-predict", "checkpoint=model.pt", cwd=tmp_path))
    assert "no inputs: give inputs=[a.png,pages/] or inputs_file=FILE" in line
    line = one_line_error(run("htr-ssl-heatmaps", "checkpoints=a.pt", cwd=tmp_path))
    assert "no inputs" in line
    line = one_line_error(run("htr-ssl-show", cwd=tmp_path))
    assert "htr-ssl-show needs checkpoint=..." in line


def test_names_with_any_characters(tmp_path):
    """Quoted values keep commas and brackets; a value Hydra's grammar cannot read
    (letters beyond ASCII, parentheses) is taken as written; a positional name needs no
    quoting at all."""
    line = one_line_error(run("htr-ssl-stats", "data=iam", "data.root='a, b [1]/c'",
                              cwd=tmp_path))
    assert "under a, b [1]/c (" in line
    line = one_line_error(run("htr-ssl-stats", "data=iam", "data.root=Écrits (été)/x#2",
                              cwd=tmp_path))
    assert "under Écrits (été)/x#2 (" in line
    line = one_line_error(run("htr-ssl-show", "l'été, [1].pt", cwd=tmp_path))
    assert "l'été, [1].pt does not exist" in line
    line = one_line_error(run("htr-ssl-predict", "checkpoint=m.pt", "inputs=[a,b",
                              cwd=tmp_path))
    assert "cannot read the options as given" in line and "inputs_file=FILE" in line
    line = one_line_error(run("htr-ssl-stats", "data=iam", "data.root=a,b", cwd=tmp_path))
    assert "a comma outside quotes makes a sweep" in line and "\"data.root='a,b'\"" in line
    assert list(tmp_path.iterdir()) == []


def test_literal_and_positional_rewrites():
    assert literal("data.root=Écrits") == "data.root='Écrits'"
    assert literal("data.root=it's") == "data.root=it's"  # quotes: left to the user
    assert literal("data.labels=0.1,0.2") == "data.labels=0.1,0.2"  # a sweep
    assert literal("inputs=[a,b]") == "inputs=[a,b]"
    assert literal("data.root=a\\b(c)") == "data.root='a\\\\b(c)'"
    assert as_option(["x'y z", "a=1"], "dir") == ["dir='x\\'y z'", "a=1"]


def test_options_a_config_lets_the_user_name_are_added_with_plus():
    assert "add one with +data.reader_args.foo=..." in check_arguments(
        "train", "htr-ssl-train", ["data.reader_args.foo=1"])
    assert check_arguments("train", "htr-ssl-train", ["+data.reader_args.foo=1"]) is None
    assert check_arguments("experiment", "htr-ssl-experiment",
                           ["+experiment=real", "pretrain.trainer.max_steps=3"]) is None
    assert check_arguments("pretrain", "htr-ssl-pretrain",
                           ["pretext=[masked,flip]", "pretext.flip.weight=0.5"]) is None


def test_heatmaps_reads_an_inputs_file(tmp_path):
    from htr_ssl.cli.heatmaps import inputs_of

    listed = tmp_path / "paths.txt"
    listed.write_text("Écrits, vol. [1]/a.png\n\nb c.png\n", encoding="utf-8")
    cfg = OmegaConf.create({"inputs": ["x.png"], "inputs_file": str(listed)})
    assert inputs_of(cfg) == ["x.png", "Écrits, vol. [1]/a.png", "b c.png"]


def test_a_failed_command_leaves_no_run_folder(tmp_path):
    """Hydra makes runs/train/<time>/ before the command runs; a command that fails before
    writing anything of its own removes it. A folder that was there before is kept."""
    line = one_line_error(run("htr-ssl-train", "data=iam", "data.root=nowhere",
                              "trainer.progress=false", cwd=tmp_path))
    assert "IAM: expected ascii/lines.txt" in line
    one_line_error(run("htr-ssl-eval", "checkpoint=missing.pt", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    one_line_error(run("htr-ssl-train", "data=iam", "data.root=nowhere",
                       "trainer.progress=false", f"hydra.run.dir={mine}", cwd=tmp_path))
    assert mine.is_dir()
