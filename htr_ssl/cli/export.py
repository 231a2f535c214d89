"""htr-ssl-export: a recognizer checkpoint -> a portable safetensors model (configs/export.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from htr_ssl.cli._config import command
from htr_ssl.inference.model_file import export_recognizer, load


def run_scores(checkpoint: Path) -> dict | None:
    """The test scores its run wrote beside the checkpoint (metrics.json), if any."""
    path = checkpoint.parent / "metrics.json"
    if not path.is_file():
        return None
    scores = json.loads(path.read_text(encoding="utf-8"))
    return scores if scores.get("split") == "test" else None


@command("export", "htr-ssl-export")
def main(cfg: DictConfig) -> None:
    source = Path(cfg.checkpoint)
    out = Path(cfg.out) if cfg.out else source.with_suffix(".safetensors")
    if out.suffix != ".safetensors":
        raise ValueError(f"out={out}: give a file name ending in .safetensors")
    if out.exists() and not cfg.overwrite:
        raise FileExistsError(f"out={out} already exists; htr-ssl-export does not "
                              "overwrite files. Fix: choose another out=, or add "
                              "overwrite=true")
    ckpt = load(source)
    meta = export_recognizer({**ckpt, "path": str(source)}, out, run_scores(source),
                             cfg.name)
    test = meta["test"]
    scores = f"; test CER {test['cer']:.2f}, WER {test['wer']:.2f}" if test else ""
    print(f"written: {out} ({out.stat().st_size / 1e6:.1f} MB, {meta['name']}, "
          f"{len(meta['alphabet']['chars'])} characters{scores})")


if __name__ == "__main__":
    main()
