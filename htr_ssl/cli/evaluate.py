"""htr-ssl-eval: score a recognizer checkpoint on a split with any decoder (configs/eval.yaml)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from htr_ssl.cli._config import fail, quiet_logging, resolved, to_dataclass, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.pipeline import DataConfig, check_split, make_loader, prepare
from htr_ssl.eval.evaluate import DecodeConfig, evaluate, resolve_head, write_results
from htr_ssl.eval.metrics import MetricConfig
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import resolve_device
from htr_ssl.train.finetune import recognizer_from_checkpoint

log = logging.getLogger(__name__)


def data_config(cfg: DictConfig, ckpt: dict) -> DataConfig:
    """The checkpoint's own data config, with this command's `data.*` overrides on top (or the
    `data` group as given, when `data=NAME` was chosen or the checkpoint has no config)."""
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    chose_group = any(o.split("=")[0].lstrip("+~") == "data" for o in overrides)
    saved = ckpt.get("config", {}).get("data")
    if not cfg.use_checkpoint_data or chose_group or saved is None:
        return to_dataclass(DataConfig, cfg.data)
    node = OmegaConf.create(saved)
    for o in overrides:
        key, _, value = o.partition("=")
        if key.startswith("data."):
            OmegaConf.update(node, key[len("data."):], OmegaConf.from_dotlist([f"v={value}"]).v)
    return to_dataclass(DataConfig, node, "data.")


def run_name(split: str, decode: DecodeConfig, head: str) -> str:
    parts = [f"eval_{split}", head, decode.method]
    parts += ["lex"] if decode.lexicon else []
    parts += ["lm"] if decode.lm else []
    return "_".join(parts)


def output_dir(cfg: DictConfig, decode: DecodeConfig, head: str) -> Path:
    """Where the results go, checked before any data is read: writable, and not a training
    run's own folder (its metrics.json and predictions.tsv would be replaced)."""
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.checkpoint).parent / run_name(
        cfg.split, decode, head)
    if (out / checkpoint.DONE).is_file() or any(out.glob("*.pt")):
        raise FileExistsError(f"out_dir={out} holds a training run: its metrics.json and "
                              "predictions.tsv would be overwritten. Fix: choose another "
                              "out_dir (or leave it unset: <checkpoint folder>/eval_<split>_...)")
    checkpoint.ensure_writable(out, "out_dir=...", "output folder")
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    try:
        check_split(cfg.split, "split")
        ckpt = checkpoint.load(cfg.checkpoint)
        model, alphabet = recognizer_from_checkpoint(ckpt)
        data_cfg = data_config(cfg, ckpt)
        decode = to_dataclass(DecodeConfig, cfg.decode)
        metric = to_dataclass(MetricConfig, {**resolved(cfg.metric),
                                             "word_images": data_cfg.word_images}, "metric.")
        out = output_dir(cfg, decode, resolve_head(model, decode.head))
        samples = prepare(data_cfg, None, alphabet).split(cfg.split)
        if not samples:
            raise ValueError(f"split {cfg.split!r} of {data_cfg.root} is empty")
        model.to(resolve_device("auto"))
        loader = make_loader(samples, alphabet, data_cfg, train=False)
        metrics, rows = evaluate(model, loader, alphabet, decode, metric, progress=True,
                                 precision=cfg.precision)
    except user_errors() as err:
        fail(err)
    metrics.update(split=cfg.split, checkpoint=str(cfg.checkpoint), decode=resolved(cfg.decode),
                   precision=cfg.precision)
    write_results(out, metrics, rows)
    print(f"{cfg.split} ({metrics['n']} samples): CER {metrics['cer']:.2f}  "
          f"WER {metrics['wer']:.2f}  WAcc {metrics['wacc']:.2f}  "
          f"WAcc(caseless) {metrics['wacc_caseless']:.2f}  line acc {metrics['line_acc']:.2f}")
    print(f"written: {out / 'metrics.json'}, {out / 'predictions.tsv'}")


if __name__ == "__main__":
    main()
