"""A folder of images without transcriptions: what an archive has before anyone transcribes it.

Pretraining reads this; every image (recursively) becomes a sample with empty text. The first
folder level below the root, when there is one, is taken as the writer/document, so the
fallback split keeps a document's lines together.
"""

from __future__ import annotations

from pathlib import Path

from htr_ssl.data.readers.common import IMAGE_EXTS, missing
from htr_ssl.data.sample import Sample

README = "datasets/page/README.md"


def read_images(root: Path) -> list[Sample]:
    """Every image file under `root`, with its path below the root (no extension) as id."""
    root = Path(root)
    if not root.is_dir():
        raise missing("images", root, "a folder of line or word images", README)
    samples = []
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
        rel = image.relative_to(root)
        writer = rel.parts[0] if len(rel.parts) > 1 else ""
        samples.append(Sample(rel.with_suffix("").as_posix(), image, "", writer))
    if not samples:
        raise missing("images", root, f"image files ({', '.join(IMAGE_EXTS)})", README)
    return samples
