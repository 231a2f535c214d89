"""The built-in synthetic handwriting, written once before a run that reads it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from htr_ssl.train import rundir

if TYPE_CHECKING:
    from htr_ssl.data.synthetic import GenerateConfig

log = logging.getLogger(__name__)


def ensure_generated(gen: GenerateConfig) -> None:
    """Write the synthetic dataset once: other launchers and torchrun ranks wait on the same
    lock, then find it written and reuse it."""
    root = Path(gen.out_dir)
    with rundir.locked(root.parent / f".{root.name}", wait=True):
        if (root / "ascii" / "lines.txt").is_file():
            return
        log.info("generating the synthetic handwriting into %s (once)", root)
        # imported here: the generator's fonts and renderer cost start-up to every run that
        # only might need them
        from htr_ssl.data.synthetic import generate

        generate(gen)
