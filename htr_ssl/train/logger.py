"""Scalars to a long-format CSV (step, tag, value) that pandas reads, and to TensorBoard when
it is installed (the `tensorboard` extra): the CSV alone holds everything a run logs."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def tensorboard_writer(folder: Path) -> Any | None:
    """A SummaryWriter into `folder`, or None (said once) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: scalars go to log.csv only "
                 "(pip install 'htr-ssl[tensorboard]' adds the tb/ event files)")
        return None
    return SummaryWriter(str(folder))


class RunLogger:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.tb = tensorboard_writer(run_dir / "tb")
        path = run_dir / "log.csv"
        new = not path.exists()
        self._file = path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(["step", "tag", "value"])

    def log(self, prefix: str, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in scalars.items():
            if self.tb is not None:
                self.tb.add_scalar(f"{prefix}/{name}", value, step)
            self._csv.writerow([step, f"{prefix}/{name}", f"{value:.6g}"])
        self._file.flush()

    def close(self) -> None:
        if self.enabled:
            if self.tb is not None:
                self.tb.close()
            self._file.close()
