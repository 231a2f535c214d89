"""htr-ssl-predict: transcribe images or folders with a checkpoint (configs/predict.yaml)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

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


def check_output(out: str | None, overwrite: bool) -> Path | None:
    """The TSV path `out`, checked before anything is read: a folder, an existing file (it may
    be anything, a checkpoint included) unless `overwrite`, or an unwritable place is an error."""
    if not out:
        return None
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"out={out} is a folder; give the TSV file to write (e.g. "
                         f"out={path / 'predictions.tsv'})")
    if path.exists() and not overwrite:
        raise FileExistsError(f"out={out} already exists ({path.stat().st_size} bytes); "
                              "htr-ssl-predict does not overwrite files. Fix: choose another "
                              "out=, or add overwrite=true")
    checkpoint.ensure_writable(path.parent, "out=...", "output folder")
    return path


def open_output(path: Path, overwrite: bool) -> TextIO:
    """`path` opened for the TSV and its header written; never replaces a file that appeared
    since it was checked, unless `overwrite`."""
    try:
        f = path.open("w" if overwrite else "x", newline="", encoding="utf-8")
    except FileExistsError as err:
        raise FileExistsError(f"out={path} already exists; choose another out=, or add "
                              "overwrite=true") from err
    f.write("path\ttext\n")
    return f


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    quiet_logging()
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else [str(cfg.inputs)]
    out, written = None, 0
    try:
        for key in ("batch_size", "sort_window"):
            if int(cfg[key]) < 1:
                raise ValueError(f"{key}={cfg[key]}; use 1 or more")
        path = check_output(cfg.out, bool(cfg.overwrite))
        model, alphabet = recognizer_from_checkpoint(checkpoint.load(cfg.checkpoint))
        paths = collect_images(inputs)
        model.to(resolve_device(cfg.device))
        transcriber = Transcriber(model, alphabet, to_dataclass(DecodeConfig, cfg.decode),
                                  cfg.precision)
        samples = [Sample(str(p), p, "") for p in paths]
        out = open_output(path, bool(cfg.overwrite)) if path else None
        rows = csv.writer(out, delimiter="\t", lineterminator="\n") if out else None
        for sid, text in read_in_input_order(transcriber, samples, model.cfg.encoder.height,
                                             cfg.batch_size, cfg.num_workers, cfg.sort_window):
            print(f"{sid}\t{text}", flush=True)
            if rows is not None:  # each line as it is read: an error later loses none
                rows.writerow((sid, text))
                out.flush()
                written += 1
    except user_errors() as err:
        fail(err)
    finally:
        if out is not None:
            out.close()
    if out is not None:
        print(f"written: {cfg.out} ({written} lines)")


if __name__ == "__main__":
    main()
