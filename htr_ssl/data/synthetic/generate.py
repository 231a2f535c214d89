"""Generate a synthetic handwriting dataset in the IAM layout, in parallel and reproducibly.

Every form draws its randomness from ``SeedSequence(seed, spawn_key=(1, writer, form))`` and
every writer's style from ``spawn_key=(0, writer)``, so the output bytes depend only on the
config, never on the number of worker processes or on scheduling order.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.splits import stable_rank
from htr_ssl.data.stats import sample_stats
from htr_ssl.data.synthetic.corpus import sample_form_lines
from htr_ssl.data.synthetic.fonts import font_table
from htr_ssl.data.synthetic.render import render_line
from htr_ssl.data.synthetic.style import sample_style
from htr_ssl.data.synthetic.writer import FormRecord, form_id, write_form, write_index, writer_id

OUTPUTS = ("ascii", "lines", "words", "xml", "train.uttlist", "validation.uttlist",
           "test.uttlist")


@dataclass
class GenerateConfig:
    """What to generate. `height` is the nominal text-line height in pixels."""

    out_dir: str = "datasets/synthetic"
    n_writers: int = 20
    forms_per_writer: int = 2
    lines_per_form: int = 8
    seed: int = 0
    height: int = 80
    workers: int = 2
    font_dir: str | None = None
    system_fonts: bool = True  # also use handwriting-like fonts installed on this machine
    val_writers_frac: float = 0.1
    test_writers_frac: float = 0.2
    overwrite: bool = False
    progress: bool = False


@dataclass(frozen=True)
class _FormTask:
    root: str
    seed: int
    writer: int
    form: int
    lines: int
    height: int
    fonts: tuple[tuple[str, float], ...]


def _make_form(task: _FormTask) -> FormRecord:
    """Render and write one form (runs in a worker process)."""
    style = sample_style(np.random.default_rng(np.random.SeedSequence(
        task.seed, spawn_key=(0, task.writer))), task.fonts)
    rng = np.random.default_rng(np.random.SeedSequence(
        task.seed, spawn_key=(1, task.writer, task.form)))
    lines = sample_form_lines(rng, task.lines)
    rendered = [render_line(units, style, task.height, rng) for units in lines]
    written = [" ".join("".join(u) for u in units) for units in lines]
    return write_form(Path(task.root), form_id(task.writer, task.form), writer_id(task.writer),
                      rendered, written, rng)


def split_writers(n_writers: int, val: float, test: float, seed: int) -> dict[str, list[int]]:
    """Writer indices per split, ranked by a seeded hash; a non-zero share gets >= 1 writer."""
    order = sorted(range(n_writers), key=lambda w: stable_rank(writer_id(w), seed))
    n_test = max(1, round(test * n_writers)) if test > 0 else 0
    n_val = max(1, round(val * n_writers)) if val > 0 else 0
    if n_writers - n_test - n_val < 1:
        raise ValueError(f"{n_writers} writers leave none for training with val={val} "
                         f"test={test}; add writers or lower the fractions")
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def _prepare(root: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier dataset unless asked; then remove only our own outputs."""
    existing = [root / n for n in OUTPUTS if (root / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{root} already holds a dataset ({existing[0].name}); "
                              "pass overwrite=true or choose another out_dir")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _run(tasks: list[_FormTask], workers: int) -> Iterator[FormRecord]:
    if workers <= 1:
        yield from map(_make_form, tasks)
        return
    chunk = max(1, min(8, len(tasks) // (4 * workers)))
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_make_form, tasks, chunksize=chunk)


def generate(cfg: GenerateConfig) -> dict:
    """Write the dataset to `cfg.out_dir` and return its statistics, read back with the IAM
    reader (so the numbers describe what training will see)."""
    if cfg.n_writers < 1 or cfg.forms_per_writer < 1 or cfg.lines_per_form < 1:
        raise ValueError("n_writers, forms_per_writer and lines_per_form must all be >= 1")
    if cfg.height < 16:
        raise ValueError(f"height={cfg.height} px is too small to render handwriting")
    start = time.perf_counter()
    root = Path(cfg.out_dir)
    _prepare(root, cfg.overwrite)
    fonts = tuple(font_table(cfg.font_dir, cfg.system_fonts))
    by_split = split_writers(cfg.n_writers, cfg.val_writers_frac, cfg.test_writers_frac, cfg.seed)
    tasks = [_FormTask(str(root), cfg.seed, w, f, cfg.lines_per_form, cfg.height, fonts)
             for w in range(cfg.n_writers) for f in range(cfg.forms_per_writer)]
    records = _run(tasks, cfg.workers)
    if cfg.progress:
        from tqdm import tqdm

        records = tqdm(records, total=len(tasks), unit="form", desc="generating")
    records = list(records)
    splits = {s: [form_id(w, f) for w in ws for f in range(cfg.forms_per_writer)]
              for s, ws in by_split.items()}
    write_index(root, records, splits)
    out = sample_stats(read_iam(root, "lines"))
    out["fonts"] = len(fonts)
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out
