"""htr-ssl-predict: transcribe images or folders with a checkpoint (configs/predict.yaml)."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig
from torch.utils.data import DataLoader

from htr_ssl.cli._config import fail, quiet_logging, to_dataclass, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.data.readers.common import IMAGE_EXTS
from htr_ssl.data.sample import Sample, TextImageDataset, collate
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import resolve_device
from htr_ssl.train.finetune import recognizer_from_checkpoint


def collect_images(inputs: list[str]) -> list[Path]:
    """Image files as given, plus every image below each folder (sorted)."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) found in {inputs}")
    return paths


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else [str(cfg.inputs)]
    try:
        model, alphabet = recognizer_from_checkpoint(checkpoint.load(cfg.checkpoint))
        height = model.cfg.encoder.height
        paths = collect_images(inputs)
        model.to(resolve_device(cfg.device))
        transcribe = Transcriber(model, alphabet, to_dataclass(DecodeConfig, cfg.decode))
        samples = [Sample(str(p), p, "") for p in paths]
        loader = DataLoader(TextImageDataset(samples, None, height), batch_size=cfg.batch_size,
                            collate_fn=collate)
        device = next(model.parameters()).device
        results: list[tuple[str, str]] = []
        for batch in loader:
            texts = transcribe(batch.images.to(device), batch.widths.to(device))
            for sid, text in zip(batch.ids, texts, strict=True):
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
