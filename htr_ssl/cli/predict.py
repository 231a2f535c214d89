"""htr-ssl-predict: transcribe images or folders with a checkpoint (configs/predict.yaml)."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig

from htr_ssl.cli._config import fail, quiet_logging, to_dataclass, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.readers.common import IMAGE_EXTS
from htr_ssl.data.sample import Sample
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber, read_in_input_order
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import resolve_device
from htr_ssl.train.finetune import recognizer_from_checkpoint


def collect_images(inputs: list[str]) -> list[Path]:
    """Image files as given, plus every image below each folder (sorted); each file once."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) found in {inputs}")
    return paths


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else [str(cfg.inputs)]
    try:
        for key in ("batch_size", "sort_window"):
            if int(cfg[key]) < 1:
                raise ValueError(f"{key}={cfg[key]}; use 1 or more")
        model, alphabet = recognizer_from_checkpoint(checkpoint.load(cfg.checkpoint))
        paths = collect_images(inputs)
        model.to(resolve_device(cfg.device))
        transcriber = Transcriber(model, alphabet, to_dataclass(DecodeConfig, cfg.decode),
                                  cfg.precision)
        samples = [Sample(str(p), p, "") for p in paths]
        results: list[tuple[str, str]] = []
        for sid, text in read_in_input_order(transcriber, samples, model.cfg.encoder.height,
                                             cfg.batch_size, cfg.num_workers, cfg.sort_window):
            print(f"{sid}\t{text}", flush=True)
            results.append((sid, text))
    except user_errors() as err:
        fail(err)
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows(
                [("path", "text"), *results])
        print(f"written: {out}")


if __name__ == "__main__":
    main()
