"""Checkpoints: everything needed to resume a run exactly, written atomically.

A checkpoint's model state keeps the encoder under the `encoder.` prefix whatever the stage
(pretext or recognizer), so any checkpoint can seed a new run's encoder.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

try:  # numpy 2 (which still reads "numpy.core" in the pickles numpy 1 wrote)
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain Python data, so that the checkpoint loads
    with `torch.load(weights_only=True)` (numpy's own state holds an ndarray)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`; also takes the numpy ndarray state older checkpoints hold."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, *rest = state["numpy"]
    if isinstance(key, torch.Tensor):
        key = key.numpy().astype(np.uint32)
    np.random.set_state((kind, key, *rest))
    random.setstate(state["python"])


def save(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename: a crash or
    SIGKILL mid-write never leaves a truncated file where a good checkpoint was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}. Fix: free disk space or "
                              "choose a writable run directory") from err
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}. Fix: free disk space or "
                              "choose a writable run directory; the previous checkpoint there "
                              "is intact") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_partial(run_dir: Path) -> None:
    """Remove temporary files of checkpoint writes that a killed run left behind."""
    for tmp in Path(run_dir).glob(".*.pt.*.tmp"):
        log.info("removing %s, a checkpoint write interrupted by a crash", tmp)
        tmp.unlink(missing_ok=True)


# What the numpy RNG state of checkpoints written before rng_state() stored it as a tensor
# needs: an ndarray of uint32, nothing that can call code (an object array is refused).
LEGACY_NUMPY = {"numpy._core.multiarray._reconstruct": _reconstruct,
                "numpy.core.multiarray._reconstruct": _reconstruct, "numpy.ndarray": np.ndarray,
                "numpy.dtype": np.dtype, "numpy.dtypes.UInt32DType": type(np.dtype(np.uint32))}


def load(path: Path | str) -> dict[str, Any]:
    """A checkpoint's content, read with `weights_only=True`: tensors and plain Python data
    only, so no code in a file anyone hands over ever runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a .pt file "
                              "written by htr-ssl (e.g. <run_dir>/best.pt or last.pt)")
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


# run folders -------------------------------------------------------------------------------

DONE = "done"
FINISHED = "finished"


class OutputDirError(RuntimeError):
    """The run directory cannot be created or written."""


def ensure_writable(run_dir: Path, option: str = "run_dir=... or hydra.run.dir=...",
                    what: str = "run directory") -> None:
    """Fail before any training (or inference) if files could not be written to `run_dir`;
    `option` is what the user sets to choose another folder."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as err:
        raise OutputDirError(
            f"cannot write to the {what} {run_dir} ({err.strerror or err}). Fix: "
            f"choose a writable folder ({option})") from err


def mark_done(run_dir: Path, info: dict[str, Any]) -> None:
    """Write the `done` marker: the run, and whatever it does after training, completed."""
    path = Path(run_dir) / DONE
    tmp = path.with_name(f".{DONE}.tmp")
    tmp.write_text(json.dumps(info, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def resolve_resume(run_dir: Path, resume: str | Path | None) -> Path | str | None:
    """What a (re)started run does: the checkpoint to continue, None to start fresh, or
    FINISHED (only for `resume="auto"`) when `run_dir` holds a completed run.

    `auto` continues `run_dir/last.pt` when there is one and the run is not marked done, so
    starting a sweep again finishes what was interrupted and skips what completed. A run that
    starts (or forks a checkpoint) into `run_dir` refuses a folder holding a `done` marker or
    any checkpoint (FileExistsError): finished work is never overwritten.
    """
    run_dir = Path(run_dir)
    if resume is None or str(resume) in ("", "none", "null"):
        refuse_used(run_dir)
        return None
    if str(resume) != "auto":
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"resume={resume}: no such checkpoint; give a last.pt or "
                                  "best.pt of the run to continue, or resume=auto")
        if path.parent.resolve() != run_dir.resolve():  # continued in another folder
            refuse_used(run_dir)
        return path
    if (run_dir / DONE).is_file():
        return FINISHED
    last = run_dir / "last.pt"
    if last.is_file():
        return last
    refuse_used(run_dir)  # e.g. a best.pt without last.pt: a fresh start would overwrite it
    return None


def refuse_used(run_dir: Path) -> None:
    """FileExistsError when `run_dir` holds a finished run or any checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / DONE).is_file():
        raise FileExistsError(
            f"{run_dir} holds a finished run (its '{DONE}' marker is there); a new run would "
            "overwrite its checkpoints and metrics. Fix: choose a new run directory "
            "(hydra.run.dir=...), or use resume=auto, which skips finished runs")
    found = sorted(run_dir.glob("*.pt"))
    if not found:
        return
    last = run_dir / "last.pt"
    if last in found:
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({last}); continue it "
                              f"with resume={last} (or resume=auto), or choose a new run "
                              "directory")
    raise FileExistsError(
        f"{run_dir} already holds a checkpoint ({', '.join(p.name for p in found)}) but no "
        f"last.pt to continue; a new run would overwrite it. Fix: continue from it with "
        f"resume={found[0]}, or choose a new run directory (hydra.run.dir=...)")


def require_kind(ckpt: dict[str, Any], path: Path | str, kind: str, hint: str) -> None:
    """CheckpointError when `ckpt` was written by another stage than `kind` (a pretraining
    checkpoint given where a recognizer run is continued, or the reverse)."""
    found = ckpt.get("kind")
    if found is not None and found != kind:
        raise CheckpointError(f"{path} is a {found!r} checkpoint, not a {kind!r} one. "
                              f"Fix: {hint}")
