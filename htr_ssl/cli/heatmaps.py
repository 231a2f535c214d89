"""htr-ssl-heatmaps: where checkpoints look on some lines (configs/heatmaps.yaml)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig

from htr_ssl.cli._config import command, to_dataclass
from htr_ssl.data.sample import Sample
from htr_ssl.eval.heatmap_report import HeatmapConfig, write_heatmaps
from htr_ssl.eval.heatmaps import load_subject
from htr_ssl.inference.inputs import collect_images, input_list
from htr_ssl.inference.runtime import resolve_device


def as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, ListConfig) else [str(value)]


def inputs_of(cfg: DictConfig) -> list[str]:
    return input_list(cfg.inputs, cfg.inputs_file, "inputs=[line.png,folder/] or "
                      "inputs_file=FILE (one image or folder per line)")


def input_samples(inputs: list[str], limit: int = 0) -> list[Sample]:
    """Images as htr-ssl-predict finds them; the id is the path below the folder given (or the
    file's stem), without the extension."""
    samples = []
    for item in inputs:
        for path in collect_images([item]):
            sid = path.relative_to(item).with_suffix("") if Path(item).is_dir() else path.stem
            samples.append(Sample(str(sid), path, ""))
    return samples[:limit] if limit > 0 else samples


@command("heatmaps", "htr-ssl-heatmaps")
def main(cfg: DictConfig) -> None:
    paths = as_list(cfg.checkpoints)
    names = as_list(cfg.names) if cfg.names is not None else [None] * len(paths)
    if len(names) != len(paths):
        raise ValueError(f"names has {len(names)} entries for {len(paths)} checkpoints")
    options = {k: cfg[k] for k in ("head", "cmap", "alpha", "row_height", "batch_size",
                                   "sheet_height")}
    hm = to_dataclass(HeatmapConfig, {**options, "maps": tuple(as_list(cfg.maps))})
    samples = input_samples(inputs_of(cfg), cfg.limit)
    device = resolve_device(cfg.device)
    subjects = [load_subject(p, n) for p, n in zip(paths, names, strict=True)]
    for s in subjects:
        for module in (s.encoder, s.recognizer, s.pretext):
            if module is not None:
                module.to(device)
    sheets = write_heatmaps(subjects, samples, cfg.out, hm)
    print(f"{len(samples)} lines x {len(subjects)} checkpoints -> {cfg.out}/")
    for s in subjects:
        print(f"  {s.name}")
    print("written: " + ", ".join(str(p) for p in sheets))


if __name__ == "__main__":
    main()
