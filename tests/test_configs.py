"""Every Hydra config composes and converts into the library's dataclasses (timm-style loop)."""

import inspect
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from htr_ssl.cli._config import to_dataclass
from htr_ssl.cli._paths import CONFIG_DIR, group_choices
from htr_ssl.cli.train import job_from_config
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.data.readers import READERS
from htr_ssl.eval.evaluate import DecodeConfig
from htr_ssl.models.recognizer import DecoderConfig, build_recognizer

GROUPS = Path(CONFIG_DIR)
MODELS = sorted(p.stem for p in (GROUPS / "model").glob("*.yaml"))
DECODERS = group_choices("decoder")
DATA = group_choices("data")
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("decoder", DECODERS)
def test_every_preset_and_decoder_builds(model, decoder):
    cfg = _compose("train", [f"model={model}", f"decoder={decoder}", "run_dir=/tmp/x"])
    job = job_from_config(cfg)
    assert job.model.encoder.preset == model and job.model.decoder.kind == decoder
    assert job.model.encoder.height == job.data.height
    net = build_recognizer(job.model, 40)
    assert (net.ctc is not None) == (decoder in ("ctc", "hybrid"))
    assert (net.attention is not None) == (decoder in ("attention", "hybrid"))


@pytest.mark.parametrize("data", DATA)
def test_every_data_config_gives_its_reader_options_it_takes(data):
    """A `reader_args` key the reader does not take would fail only once files are read."""
    cfg = _compose("train", [f"data={data}", "run_dir=/tmp/x"])
    dc = to_dataclass(DataConfig, cfg.data)
    accepted = inspect.signature(READERS[dc.name]).parameters
    assert set(dc.reader_args) <= set(accepted) - {"root"}, (data, dc.reader_args)


def test_every_data_config_composes_as_it_did_before_the_shared_base():
    """configs/data/<name>.yaml hold only what differs from data/_common.yaml; composed, every
    choice gives the `data` node (values and key order) it gave when each file repeated every
    option (tests/fixtures/data_configs.json, composed before the split). A new choice is
    added to the fixture."""
    expected = json.loads((FIXTURES / "data_configs.json").read_text(encoding="utf-8"))
    assert sorted(expected) == DATA
    for data in DATA:
        got = OmegaConf.to_container(_compose("stats", [f"data={data}"]).data)
        assert got == expected[data] and list(got) == list(expected[data]), data
    synthetic = _compose("experiment", []).synthetic.data  # the group in another package
    assert OmegaConf.to_container(synthetic)["augment"] == expected["synthetic"]["augment"]
    assert set(synthetic) == set(expected["synthetic"])


def test_decoder_configs_share_one_base_and_compose_as_before():
    """configs/decoder/<kind>.yaml set only `kind`; the options come from decoder/_common.yaml,
    and each choice composes to the node (values and key order) it gave when every file
    repeated them. Overrides of those options reach the DecoderConfig."""
    assert DECODERS == ["attention", "ctc", "hybrid"]
    for kind in DECODERS:
        for name in ("train", "experiment"):
            got = OmegaConf.to_container(_compose(name, [f"decoder={kind}"]).decoder)
            expected = {"kind": kind, "hybrid_ctc_weight": 0.5, "attn_hidden": 256,
                        "attn_emb": 64, "max_len": 128, "dropout": 0.1}
            assert got == expected and list(got) == list(expected), (name, kind)
    job = job_from_config(_compose("train", [
        "decoder=hybrid", "decoder.hybrid_ctc_weight=0.3", "decoder.max_len=40",
        "model.lstm_hidden=64", "run_dir=/tmp/x"]))
    assert job.model.decoder == DecoderConfig("hybrid", hybrid_ctc_weight=0.3, max_len=40)
    assert job.model.encoder.lstm_hidden == 64
    with pytest.raises(ValueError, match="unknown decoder"):
        job_from_config(_compose("train", ["decoder.kind=transformer", "run_dir=/tmp/x"]))


@pytest.mark.parametrize("trainer", sorted(p.stem for p in (GROUPS / "trainer").glob("*.yaml")))
def test_trainer_configs_validate_and_warm_up_within_the_run(trainer):
    """A preset whose warm-up or first validation lies beyond its last step would train with
    a rising rate throughout, or pick best.pt from the last step only."""
    t = job_from_config(_compose("train", [f"trainer={trainer}", "run_dir=/tmp/x"])).trainer
    assert t.warmup_steps < t.max_steps and t.val_every <= t.max_steps, trainer


def test_eval_and_predict_configs():
    cfg = _compose("eval", ["checkpoint=x.pt", "decode.method=beam"])
    assert to_dataclass(DecodeConfig, cfg.decode).method == "beam"
    cfg = _compose("predict", ["checkpoint=x.pt", "inputs=[a.png]"])
    assert to_dataclass(DecodeConfig, cfg.decode).head == "auto"


def test_typo_in_an_option_is_an_error():
    cfg = _compose("train", ["+trainer.lr_rate=0.1", "run_dir=/tmp/x"])
    with pytest.raises(ValueError, match="lr_rate"):
        job_from_config(cfg)


def test_a_pretext_alongside_takes_its_options_from_the_command_line():
    cfg = _compose("train", ["finetune.aux=masked", "+finetune.aux_options.ratio=0.3",
                             "run_dir=/tmp/x"])
    finetune = job_from_config(cfg).finetune
    assert (finetune.aux, finetune.aux_weight, finetune.aux_options) == ("masked", 0.5,
                                                                         {"ratio": 0.3})
    bad = _compose("train", ["finetune.aux=masked", "+finetune.aux_options.ratoi=0.3",
                             "run_dir=/tmp/x"])
    with pytest.raises(ValueError, match="ratoi"):
        job_from_config(bad)


def sweep_cells(experiment: str, command_line: tuple[str, ...] = ()) -> list[list[str]]:
    """Every override combination `htr-ssl-experiment -m +experiment=NAME ...command_line`
    launches, split by Hydra's own basic sweeper (config params first, command line after)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    params = OmegaConf.load(GROUPS / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    sweeper = BasicSweeper(max_batch_size=None, params=dict(params))
    overrides = OverridesParser.create().parse_overrides(
        [*sweeper._parse_config(), *command_line])
    return [list(cell) for batch in BasicSweeper.split_arguments(overrides, None)
            for cell in batch]


def test_a_command_line_dataset_replaces_the_sweeps_datasets():
    """The README's way to run paper_words on a copy outside datasets/: one dataset at a time."""
    every = sweep_cells("paper_words")
    one = sweep_cells("paper_words", ("data=iam_words", "data.root=/data/iam"))
    assert {c for cell in every for c in cell if c.startswith("data=")} == {
        "data=iam_words", "data=cvl_words", "data=rimes_words"}
    assert len(one) == len(every) // 3
    assert all("data=iam_words" in cell and "data.root=/data/iam" in cell for cell in one)


@pytest.mark.parametrize("experiment",
                         sorted(p.stem for p in (GROUPS / "experiment").glob("*.yaml")))
def test_every_sweep_cell_composes(experiment):
    from htr_ssl.cli.experiment import stages
    from htr_ssl.train.pretrain import PretrainJob

    cells = sweep_cells(experiment)
    assert cells
    seen = set()
    for cell in cells:
        # label fractions and seeds change no stage: one cell per (data, method, mode) is enough
        shape = tuple(o for o in cell if not o.startswith(("data.labels=", "seed=")))
        if shape in seen:
            continue
        seen.add(shape)
        data = next((o.split("=")[1] for o in cell if o.startswith("data=")), "synthetic")
        cfg = _compose("experiment", [f"+experiment={experiment}", *cell, "run_dir=/tmp/x",
                                      f"dataset={data}"])
        job = job_from_config(cfg)
        chain = stages(cfg)
        assert (not chain) == (cfg.method == "scratch")
        if chain:  # the start is shared by every cell of a method and dataset
            assert str(chain[-1].run_dir).endswith(f"pretrain/{data}/{cfg.method}")
            for stage, names in zip(chain, cfg.method.split("/"), strict=True):
                if isinstance(stage, PretrainJob):
                    assert set(stage.pretexts) == set(names.split("+")) - {"synimg"}
                    assert stage.encoder == job.model.encoder
                    assert bool(stage.extra) == ("synimg" in names)
                else:
                    assert names == "synthetic" and stage.stage and stage.generate is not None
                    assert stage.model == job.model


def test_the_defaults_are_the_recipe_the_results_page_recommends():
    """docs/results.md names the recommended recipe in a marked table; htr-ssl-pretrain with no
    pretext option and htr-ssl-train with finetune.init_from must run exactly that."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text(encoding="utf-8")
    block = text.split("<!-- recommended-recipe")[1].split("<!-- end recommended-recipe")[0]
    rows = dict(line.strip("| ").split(" | ") for line in block.splitlines()
                if line.startswith("| ") and not line.startswith("| option"))
    pre, train = _compose("pretrain", []), _compose("train", [])
    assert "+".join(pre.pretext) == rows.pop("pretext")
    for key, value in rows.items():
        stage, _, option = key.rpartition(" ")
        cfg = pre if stage == "pretrain" else train
        node = cfg
        for part in option.split("."):
            node = node[part]
        assert str(node) == value, (key, node, value)


def test_the_experiment_composes_every_pretext_config_on_the_pretraining_trainer():
    """configs/pretext/_all.yaml puts every pretext's options under pretrain.pretexts (Hydra
    composes them; no file is read by path); `${...trainer.max_steps}` in byol/dino/moco is
    the pretraining trainer's, in htr-ssl-pretrain and in htr-ssl-experiment alike."""
    from htr_ssl.cli.experiment import stages
    from htr_ssl.pretext.registry import PRETEXTS

    assert "_all" not in group_choices("pretext")
    cfg = _compose("experiment", ["method=byol+dino+moco", "run_dir=/tmp/x", "dataset=d",
                                  "trainer.max_steps=5", "pretrain.trainer.max_steps=77",
                                  "+pretrain.pretext.byol.weight=0.5",
                                  "pretrain.pretexts.dino.momentum=0.9"])
    assert sorted(cfg.pretrain.pretexts) == sorted(PRETEXTS)
    job = stages(cfg)[0]
    assert {n: c.momentum_steps for n, c in job.pretexts.items()} == {
        "byol": 77, "dino": 77, "moco": 77}
    assert job.weights == {"byol": 0.5, "dino": 1.0, "moco": 1.0}
    assert job.pretexts["dino"].momentum == 0.9
    pre = _compose("pretrain", ["pretext=[byol,moco]", "trainer.max_steps=55"])
    assert [pre.pretext[n].momentum_steps for n in ("byol", "moco")] == [55, 55]
