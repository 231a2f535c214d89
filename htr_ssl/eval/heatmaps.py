"""Where a model looks: Grad-CAM and feature-norm maps of the encoder, attention of the decoder.

Grad-CAM (Selvaraju et al. 2017) is computed generically as the gradient of a scalar score with
respect to the CNN feature map (B, C, H/16, T) that `Encoder.feature_map` describes: for a
recognizer the scores (logits) of what it read (the greedy CTC path, or the attention decoder's
tokens), for a pretext model minus its loss. The feature-norm map is the L2 norm over channels of
the same map, which needs no head at all (SeqCLR paper, Figure 4). Every map is upsampled to the
input image: frame j covers pixel columns [j * stride, (j + 1) * stride).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.sample import Batch
from htr_ssl.inference import model_file
from htr_ssl.models.encoders import Encoder, EncoderConfig
from htr_ssl.models.ops import valid_mask
from htr_ssl.models.recognizer import Recognizer

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Subject:
    """A checkpoint to look into: its encoder and the recognizer or pretext model around it
    (`pretext` is None when the pretext code cannot rebuild its heads: no Grad-CAM then)."""

    name: str
    encoder: Encoder
    recognizer: Recognizer | None = None
    alphabet: Alphabet | None = None
    pretext: nn.Module | None = None

    @property
    def height(self) -> int:
        return self.encoder.cfg.height


# --- upsampling --------------------------------------------------------------------------------


def _to_pixels(maps: torch.Tensor, height: int, width: int, stride: int) -> np.ndarray:
    """(..., h, t) map over frames -> (..., height, width) over pixels (bilinear), where t
    frames cover t * stride columns and the line's own `width` columns are kept."""
    lead = maps.shape[:-2]
    x = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    x = F.interpolate(x, size=(height, maps.shape[-1] * stride), mode="bilinear",
                      align_corners=False)
    return x[..., :width].reshape(*lead, height, width).cpu().numpy()


# --- feature maps ------------------------------------------------------------------------------


@dataclass
class Capture:
    """One encoder call: the images it saw (white = 1), their widths, and its CNN map."""

    images: torch.Tensor
    widths: torch.Tensor
    fmap: torch.Tensor | None = None


@contextlib.contextmanager
def capture_feature_map(encoder: Encoder) -> Iterator[list[Capture]]:
    """Record every encoder call made with gradients enabled: hooks on the first and last CNN
    layers, so `Encoder.forward` and its outputs stay exactly as they are."""
    calls: list[Capture] = []

    def before(_module: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]) -> None:
        if torch.is_grad_enabled():
            x, lengths = inputs  # the inverted, stride-padded input (ink = 1)
            calls.append(Capture(1.0 - x.detach(), lengths.detach()))

    def after(_module: nn.Module, _inputs: Any, output: tuple[torch.Tensor, torch.Tensor]
              ) -> None:
        if torch.is_grad_enabled() and calls and calls[-1].fmap is None:
            calls[-1].fmap = output[0]

    handles = [encoder.cnn[0].register_forward_pre_hook(before),
               encoder.cnn[-1].register_forward_hook(after)]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def feature_norm(encoder: Encoder, images: torch.Tensor, widths: torch.Tensor
                 ) -> list[np.ndarray]:
    """L2 norm over channels of the CNN map, per line, upsampled to (H, width_i)."""
    fmap = encoder.feature_map(images, widths)
    frames = encoder.frame_lengths(widths)
    norms = fmap.float().norm(dim=1)  # (B, h, T)
    return [_to_pixels(norms[i, :, : int(frames[i])], images.shape[-2], int(widths[i]),
                       encoder.wstride) for i in range(len(widths))]


@dataclass
class GradCam:
    """Grad-CAM maps (H, width_i) and the lines (H, width_i) they belong to: the input lines
    for a recognizer, the transformed ones (e.g. turned 180 degrees) for some pretexts."""

    maps: list[np.ndarray]
    lines: list[np.ndarray]


def gradcam(encoder: Encoder, score: ScoreFn, images: torch.Tensor, widths: torch.Tensor
            ) -> GradCam:
    """Grad-CAM of the score on the first encoder call `score(images, widths)` makes:
    ReLU(sum_c mean(dS/dA_c) * A_c) over each line's own frames, upsampled to the image.

    The score must be a sum of per-line scores (lines are independent in eval mode), so one
    backward pass gives every line its own map. Non-negative; zero where nothing raised it.
    When the call saw k x B images (views stacked), the first B are used.
    """
    b = images.shape[0]
    images = images.detach().clone().requires_grad_(True)  # a graph even for frozen encoders
    with torch.enable_grad(), capture_feature_map(encoder) as calls:
        value = score(images, widths)
    if not calls or calls[0].fmap is None:
        raise ValueError("the score function never ran the encoder with gradients enabled")
    call = calls[0]
    if call.fmap.shape[0] % b:
        raise ValueError(f"the encoder's first call saw {call.fmap.shape[0]} images for the "
                         f"{b} given: Grad-CAM needs the score of these images")
    (grad,) = torch.autograd.grad(value, call.fmap)
    seen_w = call.widths[:b]
    frames = encoder.frame_lengths(seen_w)
    height = call.images.shape[-2]
    maps, lines = [], []
    for i in range(b):
        t, w = int(frames[i]), int(seen_w[i])
        a = call.fmap[i, :, :, :t].detach().float()
        g = grad[i, :, :, :t].float()
        cam = F.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0))
        maps.append(_to_pixels(cam, height, w, encoder.wstride))
        lines.append(call.images[i, 0, :, :w].float().cpu().numpy())
    return GradCam(maps, lines)


# --- scores ------------------------------------------------------------------------------------


def ctc_score(model: Recognizer) -> ScoreFn:
    """The greedy CTC path's scores (the best label's logit per frame), summed over lines.

    Logits before the softmax, as Grad-CAM prescribes: log-probabilities saturate where the
    model is sure, which leaves the map a few spikes at its least certain frames.
    """
    if model.ctc is None:
        raise ValueError("this recognizer has no CTC head")

    def score(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        frames, lengths = model.encoder(images, widths)
        best = model.ctc(frames).float().amax(-1)  # (B, T)
        valid = valid_mask(lengths.to(best.device), best.shape[1])
        return (best * valid).sum()

    return score


def attention_score(model: Recognizer, ids: list[list[int]]) -> ScoreFn:
    """The logits of the decoded tokens `ids` (and <eos>) under teacher forcing, summed."""
    if model.attention is None:
        raise ValueError("this recognizer has no attention decoder")

    def score(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        frames, lengths = model.encoder(images, widths)
        n = torch.tensor([len(s) for s in ids], device=frames.device)
        targets = torch.zeros(len(ids), max(int(n.max()), 1), dtype=torch.long,
                              device=frames.device)
        for i, seq in enumerate(ids):
            targets[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        logits, _ = model.attention(frames, lengths, targets, n)
        gold = torch.zeros(logits.shape[:2], dtype=torch.long, device=frames.device)
        gold[:, : targets.shape[1]] = targets
        gold[torch.arange(len(ids)), n] = model.eos
        chosen = logits.float().gather(-1, gold[..., None]).squeeze(-1)
        valid = valid_mask(n.to(chosen.device) + 1, chosen.shape[1])  # the text and its <eos>
        return (chosen * valid).sum()

    return score


def pretext_score(model: nn.Module, seed: int = 0) -> ScoreFn:
    """Minus the pretext loss (Grad-CAM then shows what makes the pretext task easier), with
    the pretext's random choices (which rotation, which crop) seeded so the maps repeat.
    `model` is a PretextModel: forward(batch) -> (loss, metrics)."""

    def score(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        b = len(widths)
        n_views = int(getattr(model, "views", 1))
        views = images[None].expand(n_views, *images.shape) if n_views > 1 else None
        batch = Batch(images, widths, torch.zeros(b, 1, dtype=torch.long),
                      torch.zeros(b, dtype=torch.long), [""] * b, [""] * b, 0, views)
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return -model(batch)[0]

    return score


# --- attention ---------------------------------------------------------------------------------


def attention_maps(model: Recognizer, images: torch.Tensor, widths: torch.Tensor
                   ) -> tuple[list[list[int]], list[np.ndarray]]:
    """Greedy attention decoding: ids per line and weights (L_i, width_i) over pixel columns."""
    pred = model.predict(images, widths, mode="attention")
    out = []
    for w, width in zip(pred.attention or [], widths.tolist(), strict=True):
        if len(w) == 0:  # nothing decoded
            out.append(np.zeros((0, int(width)), np.float32))
        else:
            out.append(_to_pixels(w[:, None, :], 1, int(width), model.encoder.wstride)[:, 0])
    return pred.ids, out


# --- loading -----------------------------------------------------------------------------------


def _run_name(path: Path) -> str | None:
    """"rotation", "rotation (frozen)" ... from the metrics.json next to a fine-tuned
    checkpoint, when there is one."""
    metrics = path.parent / "metrics.json"
    try:
        run = json.loads(metrics.read_text(encoding="utf-8")).get("run") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not run.get("method"):
        return None
    return run["method"] + (" (frozen)" if run.get("protocol") == "frozen" else "")


def load_subject(path: Path | str, name: str | None = None) -> Subject:
    """A recognizer checkpoint, or a pretext checkpoint (its encoder from `encoder_config`)."""
    path = Path(path)
    ckpt = model_file.load(path)
    kind = ckpt.get("kind")
    name = name or ckpt.get("method") or _run_name(path) or f"{path.parent.name}/{path.stem}"
    if kind == "recognizer":
        from htr_ssl.inference.model_file import recognizer_from_checkpoint

        model, alphabet = recognizer_from_checkpoint(ckpt)
        return Subject(str(name), model.encoder, recognizer=model.eval(), alphabet=alphabet)
    if kind == "pretext":
        return _pretext_subject(path, ckpt, str(name))
    raise model_file.CheckpointError(f"{path} is a {kind!r} checkpoint; heat maps need a "
                                     "recognizer or pretext checkpoint written by htr-ssl")


def _pretext_subject(path: Path, ckpt: dict[str, Any], name: str) -> Subject:
    """The whole pretext model when this version can rebuild its heads; else the encoder alone
    (from `encoder_config`), which still gives the feature-norm map."""
    from htr_ssl.pretext.model import pretext_model_from_checkpoint

    if "pretexts" in ckpt:
        try:
            model = pretext_model_from_checkpoint(ckpt).eval()
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            log.warning("%s: cannot rebuild the pretext heads (%s); feature norms only", path,
                        err)
        else:
            return Subject(name, model.encoder, pretext=model)
    if not isinstance(ckpt.get("encoder_config"), dict):
        raise model_file.CheckpointError(f"pretext checkpoint {path} has no 'encoder_config': "
                                         "cannot rebuild its encoder")
    encoder = Encoder(EncoderConfig(**ckpt["encoder_config"]))
    model_file.load_encoder(encoder, path)
    return Subject(name, encoder.eval())
