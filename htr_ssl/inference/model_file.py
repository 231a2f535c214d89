"""Model files: htr-ssl checkpoints (.pt, read weights-only) and portable exports (.safetensors).

An export holds the recognizer's weights and, as safetensors metadata, what is needed to read
with it and to know what it is: alphabet, model and decoder config, htr-ssl and torch
versions, the data it was trained on (by name) and its test scores. No optimizer state, no
file paths, and nothing that runs code when loaded. Every command that takes a checkpoint
takes an export, since `load` returns both as the same dictionary.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.recognizer import Recognizer, build_recognizer, recognizer_config_from_dict

try:  # numpy 2 (which still reads "numpy.core" in the pickles numpy 1 wrote)
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

log = logging.getLogger(__name__)

META_KEY = "htr_ssl"
# What reaches an export from the run's data config and description: names and numbers only.
DATA_KEYS = ("name", "height", "max_width", "word_images", "labels", "oov")
RUN_KEYS = ("method", "dataset", "labels", "protocol", "seed", "encoder", "decoder")
TEST_KEYS = ("split", "n", "cer", "wer", "wacc", "wacc_caseless", "line_acc")
# Training-only layers a recognizer checkpoint may carry (a pretext trained alongside,
# train/joint.py): reading the recognizer leaves them out.
AUX_PREFIX = "aux."


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


def htr_ssl_version() -> str:
    try:
        return version("htr-ssl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# What the numpy RNG state of checkpoints written before rng_state() stored it as a tensor
# needs: an ndarray of uint32, nothing that can call code (an object array is refused).
LEGACY_NUMPY = {"numpy._core.multiarray._reconstruct": _reconstruct,
                "numpy.core.multiarray._reconstruct": _reconstruct, "numpy.ndarray": np.ndarray,
                "numpy.dtype": np.dtype, "numpy.dtypes.UInt32DType": type(np.dtype(np.uint32))}


def is_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length, then the JSON header."""
    with Path(path).open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load(path: Path | str) -> dict[str, Any]:
    """A checkpoint's content, or an export's as the same dictionary (`model` weights, `kind`,
    `alphabet`, `model_config`, plus `export`: its metadata). Checkpoints are read with
    `weights_only=True`: tensors and plain Python data only, so no code in a file anyone
    hands over ever runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a .pt file "
                              "written by htr-ssl (e.g. <run_dir>/best.pt or last.pt) or of a "
                              ".safetensors file written by htr-ssl-export")
    if is_safetensors(path):
        return _load_export(path)
    try:
        with torch.serialization.safe_globals([(v, k) for k, v in LEGACY_NUMPY.items()]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refused(path, err) from err
    except Exception as err:  # torch raises many types for a corrupt file
        raise CheckpointError(
            f"cannot read checkpoint {path} ({path.stat().st_size} bytes): it is truncated or "
            f"not a torch checkpoint ({type(err).__name__}: {err}). Fix: use the other "
            "checkpoint of that run (best.pt / last.pt), or copy the file again") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not an htr-ssl checkpoint (no 'model' weights); pass "
                              "a best.pt or last.pt that htr-ssl wrote")
    return ckpt


def _refused(path: Path, err: Exception) -> CheckpointError:
    """The error for a file that `weights_only` refused: one that would run code when loaded,
    or one that is damaged or not a checkpoint at all."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: the unpickler's own message names them
        names = re.findall(r"GLOBAL (\S+)", str(err))
    names = [n for n in names if n not in LEGACY_NUMPY]
    if names:
        return CheckpointError(
            f"refusing checkpoint {path}: it holds Python objects besides weights and plain "
            f"data ({', '.join(names[:5])}), which would run code when loaded. htr-ssl only "
            "loads tensors and plain data (torch.load weights_only=True). Fix: use a best.pt / "
            "last.pt written by htr-ssl, and do not load files from an untrusted source")
    reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
    return CheckpointError(
        f"cannot read checkpoint {path} ({path.stat().st_size} bytes): it is truncated or not "
        f"a torch checkpoint ({reason.group(1) if reason else type(err).__name__}). Fix: use "
        "the other checkpoint of that run (best.pt / last.pt), or copy the file again")


def read_export_metadata(path: Path) -> dict[str, Any]:
    """An export's metadata, without reading its weights."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"cannot read model file {path}: {err}. Fix: copy the file "
                              "again, or export it again with htr-ssl-export") from err
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file but not an htr-ssl export (no "
                              f"'{META_KEY}' metadata); write one with htr-ssl-export")
    return json.loads(raw)


def _load_export(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_export_metadata(path)
    try:
        weights = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"cannot read model file {path}: {err}") from err
    return {"model": weights, "kind": meta.get("kind"), "alphabet": meta.get("alphabet"),
            "model_config": meta.get("model_config"), "export": meta, "path": str(path)}


def weight_mismatch(module: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """What differs between a module's parameters and saved weights, one line per kind."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in weights and tuple(weights[k].shape) != tuple(v.shape)]

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

    out = []
    if missing:
        out.append(f"{len(missing)} layers of the model are not in the checkpoint: {some(missing)}")
    if unexpected:
        out.append(f"{len(unexpected)} layers of the checkpoint are not in the model: "
                   f"{some(unexpected)}")
    if shapes:
        out.append(f"{len(shapes)} layers differ in shape (checkpoint vs model): {some(shapes)}")
    return out


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: Path | str,
                 what: str = "model", hint: str = "") -> None:
    """`module.load_state_dict(weights)`, with an error that lists the differing layers
    instead of torch's raw dump."""
    problems = weight_mismatch(module, weights)
    if problems:
        raise CheckpointError(
            f"the {what} in {path} does not match the configured {what}:\n  "
            + "\n  ".join(problems)
            + f"\nFix: {hint or 'configure the same architecture as the run that wrote it'}")
    module.load_state_dict(weights, strict=True)


def recognizer_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Recognizer, Alphabet]:
    """Rebuild the recognizer (same architecture and weights) and alphabet a run saved."""
    if ckpt.get("kind") != "recognizer":
        raise CheckpointError(
            f"this checkpoint is a {ckpt.get('kind', 'unknown')!r} checkpoint, not a recognizer; "
            "fine-tune it first (htr-ssl-train finetune.init_from=...)")
    try:  # the nested shape, or the flat one of checkpoints older than DecoderConfig
        model_cfg = recognizer_config_from_dict(ckpt["model_config"])
    except ValueError as e:
        raise CheckpointError(f"{ckpt.get('path', 'the checkpoint')}: its model_config is not "
                              f"one htr-ssl wrote: {e}") from None
    alphabet = Alphabet.from_dict(ckpt["alphabet"])
    model = build_recognizer(model_cfg, alphabet)
    load_weights(model, recognizer_weights(ckpt["model"]), ckpt.get("path", "the checkpoint"),
                 "recognizer",
                 "the checkpoint's alphabet and weights disagree (was it edited?); use a "
                 "best.pt / last.pt exactly as htr-ssl wrote it")
    return model, alphabet


def recognizer_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A recognizer checkpoint's weights less the training-only `aux.*` layers."""
    return {k: v for k, v in weights.items() if not k.startswith(AUX_PREFIX)}


def load_recognizer(path: Path | str) -> tuple[Recognizer, Alphabet, dict[str, Any]]:
    """(recognizer in eval mode, alphabet, file content) of a checkpoint or an export."""
    ckpt = load(path)
    model, alphabet = recognizer_from_checkpoint({**ckpt, "path": str(path)})
    return model.eval(), alphabet, ckpt


def export_metadata(ckpt: dict[str, Any], model: Recognizer,
                    scores: dict[str, Any] | None = None,
                    name: str | None = None) -> dict[str, Any]:
    """What an export of `model` (rebuilt from `ckpt`) carries besides weights: only names,
    numbers and the alphabet."""
    data = (ckpt.get("config") or {}).get("data") or {}
    run = (scores or {}).get("run") or {}
    meta = {
        "kind": "recognizer", "name": name or run.get("method") or "recognizer",
        "htr_ssl_version": htr_ssl_version(), "torch_version": torch.__version__,
        "alphabet": ckpt["alphabet"],
        "model_config": asdict(model.cfg),  # nested, whatever shape the checkpoint had
        "data": {"dataset": run.get("dataset") or (ckpt.get("config") or {}).get("dataset")
                 or data.get("name"), **{k: data[k] for k in DATA_KEYS if k in data}},
        "training": {"step": (ckpt.get("loop") or {}).get("step"),
                     **{k: run[k] for k in RUN_KEYS if k in run}},
        "test": {k: scores[k] for k in TEST_KEYS if k in (scores or {})},
    }
    if isinstance(meta["data"].get("labels"), float | int):
        meta["data"]["labels"] = float(meta["data"]["labels"])
    return meta


def export_recognizer(ckpt: dict[str, Any], out: Path, scores: dict[str, Any] | None = None,
                      name: str | None = None) -> dict[str, Any]:
    """Write `ckpt`'s recognizer weights and metadata to `out` (safetensors); returns the
    metadata."""
    from safetensors.torch import save_file

    if ckpt.get("kind") != "recognizer":
        raise CheckpointError(f"{ckpt.get('path', 'this checkpoint')} is a "
                              f"{ckpt.get('kind', 'unknown')!r} checkpoint; htr-ssl-export "
                              "writes recognizers (fine-tune the encoder first)")
    model, _ = recognizer_from_checkpoint(ckpt)  # the weights fit the config they carry
    meta = export_metadata(ckpt, model, scores, name)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out), metadata={META_KEY: json.dumps(meta, ensure_ascii=False)})
    return meta


def describe(path: Path | str) -> dict[str, Any]:
    """What `htr-ssl-show` prints about a model file."""
    path = Path(path)
    size = f"{path.stat().st_size / 1e6:.1f} MB" if path.is_file() else "?"
    if path.is_file() and is_safetensors(path):
        return {"file": str(path), "format": "safetensors (htr-ssl export)", "size": size,
                **read_export_metadata(path)}
    ckpt = load(path)
    info: dict[str, Any] = {"file": str(path), "format": "htr-ssl checkpoint", "size": size,
                            "kind": ckpt.get("kind"),
                            "resumable": all(k in ckpt for k in ("optimizer", "rng", "loop")),
                            "step": (ckpt.get("loop") or {}).get("step")}
    for key in ("method", "alphabet", "model_config", "encoder_config"):
        if key in ckpt:
            info[key] = ckpt[key]
    params = sum(v.numel() for v in ckpt["model"].values() if isinstance(v, torch.Tensor))
    info["parameters"] = params
    data = (ckpt.get("config") or {}).get("data")
    if data:
        info["data"] = {k: data[k] for k in ("name", "root", *DATA_KEYS[1:]) if k in data}
    return info


__all__ = ["CheckpointError", "describe", "export_recognizer", "load",
           "load_recognizer", "load_weights", "recognizer_from_checkpoint", "weight_mismatch"]


def load_encoder(encoder: nn.Module, path: Path | str,
                 ckpt: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy the `encoder.*` weights of any htr-ssl checkpoint into `encoder` (strict); `ckpt`
    is the checkpoint's content when it was already loaded from `path`."""
    ckpt = ckpt if ckpt is not None else load(path)
    prefix = "encoder."
    weights = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f"checkpoint {path} holds no encoder weights (no 'encoder.*' keys)")
    saved = ckpt.get("encoder_config") or (ckpt.get("config") or {}).get("model") or {}
    preset = f" (it was written with model={saved.get('preset')})" if saved.get("preset") else ""
    load_weights(encoder, weights, path, "encoder",
                 f"use the model preset and options of the run that wrote it{preset}")
    left = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in ckpt["model"]
                   if not k.startswith(prefix) and "." in k})
    log.info("loaded %d encoder tensors from %s (%s checkpoint, step %s)%s", len(weights), path,
             ckpt.get("kind", "?"), (ckpt.get("loop") or {}).get("step"),
             f"; not loaded (the checkpoint's own heads): {', '.join(left)}" if left else "")
    return ckpt
