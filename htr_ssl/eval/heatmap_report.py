"""From checkpoints and line images to heat-map PNGs: one folder per checkpoint, contact sheets.

Layout of `out/`:
  <checkpoint name>/<line id>.gradcam.png        Grad-CAM over the line the encoder saw
  <checkpoint name>/<line id>.fnorm.png          feature-norm map over the line (the line's size)
  <checkpoint name>/<line id>.attention.png      the line, then one row per decoded character
  <checkpoint name>/<line id>.attention_all.png  every decoding step in one overlay
  <checkpoint name>/predictions.tsv              what the recognizer read (id, text)
  sheet_<map>.png                                lines x checkpoints, for comparing them

Every picture but the attention strip has the size of the line at the model's input height.
Grad-CAM of a rotation or flip pretext is drawn over the line as the pretext turned it.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from htr_ssl.data.sample import Sample, TextImageDataset, collate_readable
from htr_ssl.eval import overlays
from htr_ssl.eval.evaluate import resolve_head
from htr_ssl.eval.heatmaps import (
    ScoreFn,
    Subject,
    attention_maps,
    attention_score,
    ctc_score,
    feature_norm,
    gradcam,
    pretext_score,
)

log = logging.getLogger(__name__)

MAPS = ("gradcam", "fnorm", "attention")


@dataclass(frozen=True)
class HeatmapConfig:
    """`maps`: any of gradcam, fnorm, attention. `head`: which recognizer output Grad-CAM
    explains (auto | ctc | attention). `sheet_height`: contact-sheet row height in pixels
    (0: the tallest model's input height)."""

    maps: tuple[str, ...] = MAPS
    head: str = "auto"
    cmap: str = "jet"
    alpha: float = 0.5
    row_height: int = 12
    batch_size: int = 8
    sheet_height: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.maps) - set(MAPS)
        if unknown:
            raise ValueError(f"unknown map(s) {sorted(unknown)}; use any of {', '.join(MAPS)}")
        overlays.colormap(self.cmap)
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha={self.alpha}: use a value in [0, 1]")


@dataclass
class LineResult:
    """One line seen by one checkpoint: the text it read and an overlay per map."""

    id: str
    text: str
    pictures: dict[str, np.ndarray] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A file or folder name from an id or checkpoint name ('/' and the like become '_')."""
    return re.sub(r"[^\w.-]+", "_", text).strip("._") or "line"


def unique_names(names: Sequence[str]) -> list[str]:
    """`safe_name` of each, with -2, -3 ... added where two would collide."""
    seen: dict[str, int] = {}
    out = []
    for name in map(safe_name, names):
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _images(batch) -> list[np.ndarray]:
    return [batch.images[i, 0, :, : int(w)].cpu().numpy() for i, w in enumerate(batch.widths)]


def _score_and_text(subject: Subject, cfg: HeatmapConfig, images: torch.Tensor,
                    widths: torch.Tensor) -> tuple[ScoreFn | None, list[str], tuple | None]:
    """The Grad-CAM score function, the decoded texts and (for attention) the decoding."""
    model = subject.recognizer
    if model is None:
        score = pretext_score(subject.pretext) if subject.pretext is not None else None
        return score, [""] * len(widths), None
    head = resolve_head(model, cfg.head)
    if (head == "attention" and model.attention is None) or (head == "ctc" and model.ctc is None):
        raise ValueError(f"head={head}: checkpoint {subject.name!r} has no {head} decoder "
                         f"(it is a {model.cfg.decoder.kind} recognizer); use head=auto")
    needs_attn = model.attention is not None and ("attention" in cfg.maps or head == "attention")
    attn = attention_maps(model, images, widths) if needs_attn else None
    if head == "attention" and attn is not None:
        ids, score = attn[0], attention_score(model, attn[0])
    else:
        ids, score = model.predict(images, widths, mode="ctc").ids, ctc_score(model)
    assert subject.alphabet is not None
    return score, [subject.alphabet.decode(i) for i in ids], attn


def line_results(subject: Subject, batch, cfg: HeatmapConfig, out_dir: Path) -> list[LineResult]:
    """Every requested map of one batch, written to `out_dir` and returned as overlays."""
    device = next(subject.encoder.parameters()).device
    images, widths = batch.images.to(device), batch.widths.to(device)
    score, texts, attn = _score_and_text(subject, cfg, images, widths)
    pixels = _images(batch)
    heat: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}  # name -> (maps, lines)
    if "gradcam" in cfg.maps and score is not None:
        cam = gradcam(subject.encoder, score, images, widths)
        heat["gradcam"] = cam.maps, cam.lines
    if "fnorm" in cfg.maps:
        heat["fnorm"] = feature_norm(subject.encoder, images, widths), pixels
    results = []
    for i, sid in enumerate(batch.ids):
        res = LineResult(sid, texts[i])
        stem = out_dir / sid
        for name, (maps, lines) in heat.items():
            res.pictures[name] = overlays.overlay(lines[i], maps[i], cfg.cmap, cfg.alpha)
            overlays.save_png(res.pictures[name], f"{stem}.{name}.png")
        if "attention" in cfg.maps and attn is not None and subject.alphabet is not None:
            ids, weights = attn[0][i], attn[1][i]
            chars = [subject.alphabet.decode([t]) for t in ids]
            strip = overlays.attention_strip(pixels[i], weights, chars, cfg.cmap,
                                             cfg.row_height, margin=2 * cfg.row_height)
            overlays.save_png(strip, f"{stem}.attention.png")
            res.pictures["attention"] = overlays.attention_combined(pixels[i], weights,
                                                                    cfg.cmap, cfg.alpha)
            overlays.save_png(res.pictures["attention"], f"{stem}.attention_all.png")
        results.append(res)
    return results


def _explain_missing(subject: Subject, cfg: HeatmapConfig) -> None:
    if "gradcam" in cfg.maps and subject.recognizer is None and subject.pretext is None:
        log.warning("%s: no Grad-CAM (no head to explain); feature norms only", subject.name)
    if "attention" in cfg.maps and (subject.recognizer is None
                                    or subject.recognizer.attention is None):
        log.info("%s: no attention decoder, so no attention maps", subject.name)


@torch.no_grad()
def write_heatmaps(subjects: Sequence[Subject], samples: Sequence[Sample], out: Path | str,
                   cfg: HeatmapConfig | None = None) -> list[Path]:
    """Heat maps of every line for every checkpoint, plus one contact sheet per map.

    File names come from the sample ids (made safe for file systems); each checkpoint writes
    into a folder named after it. Returns the contact sheets written.
    """
    cfg = cfg or HeatmapConfig()
    out = Path(out)
    ids = unique_names([s.id for s in samples])
    named = [replace(s, id=i) for i, s in zip(ids, samples, strict=True)]
    folders = unique_names([s.name for s in subjects])
    table: list[dict[str, LineResult]] = []
    for subject, folder in zip(subjects, folders, strict=True):
        _explain_missing(subject, cfg)
        subject.encoder.eval()
        (out / folder).mkdir(parents=True, exist_ok=True)
        loader = DataLoader(TextImageDataset(named, None, subject.height),
                            batch_size=cfg.batch_size, collate_fn=collate_readable)
        results: dict[str, LineResult] = {}
        for batch in (b for b in loader if len(b)):  # unreadable images are skipped, warned
            results.update((r.id, r) for r in line_results(subject, batch, cfg, out / folder))
        table.append(results)
        if subject.recognizer is not None:
            with (out / folder / "predictions.tsv").open("w", newline="", encoding="utf-8") as f:
                csv.writer(f, delimiter="\t", lineterminator="\n").writerows(
                    [("id", "text"), *((r.id, r.text) for r in results.values())])
    return _sheets(subjects, ids, table, cfg, out)


def _sheets(subjects: Sequence[Subject], ids: list[str], table: list[dict[str, LineResult]],
            cfg: HeatmapConfig, out: Path) -> list[Path]:
    height = cfg.sheet_height or max(s.height for s in subjects)
    rows = [i for i in ids if any(i in res for res in table)]  # unreadable lines left out
    written = []
    for name in MAPS:
        if not any(name in r.pictures for res in table for r in res.values()):
            continue
        cells = [[res[i].pictures.get(name) if i in res else None for res in table]
                 for i in rows]
        captions = [[res[i].text if i in res else "" for res in table] for i in rows]
        has_text = any(s.recognizer is not None for s in subjects)
        sheet = overlays.contact_sheet(cells, rows, [s.name for s in subjects],
                                       captions if has_text else None, height)
        written.append(overlays.save_png(sheet, out / f"sheet_{name}.png"))
    return written
