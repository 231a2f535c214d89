"""Cut page-region samples (PAGE, ALTO, RIMES ICDAR) into line images once, page by page.

A sample that lives on a page otherwise decodes its whole page (often tens of megapixels)
each time it is loaded: once per line, per epoch. Here each page is decoded once, its lines are
written as PNGs into a cache keyed by page file, its size and time stamp, the box and the
polygon, and the samples are pointed at those files. A changed page gets new crops; the
user's data folder is never written to.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from htr_ssl.data.image import ImageReadError, crop_region, load_gray
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "htr-ssl" / "crops"


def crop_key(sample: Sample) -> str:
    """Content address of a crop: changes when the page file or the region changes."""
    stat = Path(sample.image_path).stat()
    raw = (f"{Path(sample.image_path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|"
           f"{sample.bbox}|{sample.polygon}")
    return hashlib.sha1(raw.encode()).hexdigest()


def _write_png(path: Path, pixels) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file


def materialize_crops(samples: Sequence[Sample], cache_dir: Path,
                      progress: bool = False) -> list[Sample]:
    """Samples with a `bbox` become plain image samples backed by cached crops.

    A page that cannot be read keeps its samples as they are (the Dataset then skips them with
    a warning), so this step never loses data nor fails a run that would otherwise work.
    """
    pages: dict[Path, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if s.bbox is not None and Path(s.image_path).is_file():
            pages[Path(s.image_path)].append(i)
    if not pages:
        return list(samples)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = list(samples)
    written = 0
    for page, indices in tqdm(pages.items(), disable=not progress, desc="cropping", unit="page"):
        targets = {i: cache_dir / f"{crop_key(samples[i])}.png" for i in indices}
        todo = [i for i in indices if not targets[i].exists()]
        if todo:
            try:
                pixels = load_gray(page, orient=False)
            except ImageReadError as err:
                log.warning("cannot crop lines from %s: %s", page, err)
                continue
            for i in todo:
                s = samples[i]
                try:
                    _write_png(targets[i], crop_region(pixels, s.bbox, s.polygon, str(page)))
                    written += 1
                except ImageReadError as err:
                    log.warning("sample %s: %s", s.id, err)
        for i in indices:
            if targets[i].exists():
                out[i] = replace(samples[i], image_path=targets[i], bbox=None, polygon=None)
    if written:
        log.info("cropped %d lines from %d pages into %s", written, len(pages), cache_dir)
    return out
