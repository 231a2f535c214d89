"""Checkpoints: everything needed to resume a run exactly, written atomically.

A checkpoint's model state keeps the encoder under the `encoder.` prefix whatever the stage
(pretext or recognizer), so any checkpoint can seed a new run's encoder.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: a crash mid-write never
    leaves a truncated file where a good checkpoint was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a .pt file "
                              "written by htr-ssl (e.g. <run_dir>/best.pt or last.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a corrupt file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def load_encoder(encoder: nn.Module, path: Path | str) -> dict[str, Any]:
    """Copy the `encoder.*` weights of any htr-ssl checkpoint into `encoder` (strict)."""
    ckpt = load(path)
    prefix = "encoder."
    weights = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f"checkpoint {path} holds no encoder weights (no 'encoder.*' keys)")
    try:
        encoder.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"the encoder in {path} does not match the configured encoder; use the same model "
            f"preset as the run that wrote it ({ckpt.get('config', {}).get('model', '?')}): {err}"
        ) from err
    log.info("loaded encoder weights from %s (step %s)", path, ckpt.get("step"))
    return ckpt
