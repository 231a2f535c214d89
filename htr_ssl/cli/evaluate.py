"""htr-ssl-eval: score a recognizer (checkpoint or export) with any decoder on a split of its
own data or on any labeled set as a whole (configs/eval.yaml)."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from htr_ssl.cli._config import command, resolved, to_dataclass
from htr_ssl.data.pipeline import DataConfig, check_split, make_loader, prepare, whole_set
from htr_ssl.eval.evaluate import DecodeConfig, evaluate, resolve_head, write_results
from htr_ssl.eval.metrics import MetricConfig
from htr_ssl.inference import runtime
from htr_ssl.inference.model_file import load, recognizer_from_checkpoint
from htr_ssl.inference.runtime import resolve_device

SPLIT_CHOICES = ("auto", "train", "val", "test", "all")

log = logging.getLogger(__name__)


def data_config(cfg: DictConfig, ckpt: dict) -> tuple[DataConfig, bool]:
    """The data to score and whether it is the checkpoint's own: its saved data config with
    this command's `data.*` overrides on top, or the `data` group as given when `data=NAME`
    was chosen (or the checkpoint carries no data config, as an export)."""
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    keys = [o.split("=")[0].lstrip("+~") for o in overrides]
    chose_group = "data" in keys
    saved = (ckpt.get("config") or {}).get("data")
    if saved is None and not chose_group and cfg.use_checkpoint_data:
        raise ValueError(f"{cfg.checkpoint} does not say where its data lives (an exported "
                         "model carries no paths). Fix: give the labeled set to score, e.g. "
                         "data=folder data.root=lines/ (split=all scores all of it)")
    own = not chose_group and "data.root" not in keys
    if not cfg.use_checkpoint_data or chose_group or saved is None:
        return to_dataclass(DataConfig, cfg.data), own
    node = OmegaConf.create(saved)
    for o in overrides:
        key, _, value = o.partition("=")
        if key.startswith("data."):
            OmegaConf.update(node, key[len("data."):], OmegaConf.from_dotlist([f"v={value}"]).v)
    return to_dataclass(DataConfig, node, "data."), own


def resolve_split(split: str, own: bool) -> str:
    """split=auto: the test split of the checkpoint's own data, all of any other set."""
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split={split!r} is not a split; use {', '.join(SPLIT_CHOICES)} "
                         "(all: every labeled sample of the data, as one set)")
    return ("test" if own else "all") if split == "auto" else split


def run_name(split: str, decode: DecodeConfig, head: str) -> str:
    parts = [f"eval_{split}", head, decode.method]
    parts += ["lex"] if decode.lexicon else []
    parts += ["lm"] if decode.lm else []
    return "_".join(parts)


def output_dir(cfg: DictConfig, decode: DecodeConfig, head: str, name: str | None = None
               ) -> Path:
    """Where the results go, checked before any data is read: writable, and not a training
    run's own folder (its metrics.json and predictions.tsv would be replaced). `name` stands
    for the split in the default folder's name."""
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.checkpoint).parent / run_name(
        name or cfg.split, decode, head)
    if (out / runtime.DONE).is_file() or any(out.glob("*.pt")):
        raise FileExistsError(f"out_dir={out} holds a training run: its metrics.json and "
                              "predictions.tsv would be overwritten. Fix: choose another "
                              "out_dir (or leave it unset: <checkpoint folder>/eval_<split>_...)")
    runtime.ensure_writable(out, "out_dir=...", "output folder")
    return out


@command("eval", "htr-ssl-eval")
def main(cfg: DictConfig) -> None:
    if cfg.split != "auto":
        resolve_split(cfg.split, True)  # a bad choice fails before the checkpoint is read
    ckpt = load(cfg.checkpoint)
    model, alphabet = recognizer_from_checkpoint({**ckpt, "path": str(cfg.checkpoint)})
    data_cfg, own = data_config(cfg, ckpt)
    split = resolve_split(cfg.split, own)
    decode = to_dataclass(DecodeConfig, cfg.decode)
    metric = to_dataclass(MetricConfig, {**resolved(cfg.metric),
                                         "word_images": data_cfg.word_images}, "metric.")
    name = split if split != "all" else f"{Path(data_cfg.root).stem or 'data'}_all"
    out = output_dir(cfg, decode, resolve_head(model, decode.head), name)
    if split == "all":
        samples = whole_set(data_cfg, alphabet)
    else:
        samples = prepare(data_cfg, None, alphabet).split(check_split(split))
    if not samples:
        raise ValueError(f"split {split!r} of {data_cfg.root} is empty")
    model.to(resolve_device("auto"))
    loader = make_loader(samples, alphabet, data_cfg, train=False)
    metrics, rows = evaluate(model, loader, alphabet, decode, metric, progress=True,
                             precision=cfg.precision)
    metrics.update(split=split, checkpoint=str(cfg.checkpoint), decode=resolved(cfg.decode),
                   precision=cfg.precision, data={"name": data_cfg.name, "root": data_cfg.root})
    write_results(out, metrics, rows)
    print(f"{split} of {data_cfg.root} ({metrics['n']} samples): CER {metrics['cer']:.2f}  "
          f"WER {metrics['wer']:.2f}  WAcc {metrics['wacc']:.2f}  "
          f"WAcc(caseless) {metrics['wacc_caseless']:.2f}  line acc {metrics['line_acc']:.2f}")
    print(f"written: {out / 'metrics.json'}, {out / 'predictions.tsv'}")


if __name__ == "__main__":
    main()
