"""Scalars to TensorBoard and to a long-format CSV (step, tag, value) that pandas reads."""

from __future__ import annotations

import csv
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.tb = SummaryWriter(str(run_dir / "tb"))
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
            self.tb.add_scalar(f"{prefix}/{name}", value, step)
            self._csv.writerow([step, f"{prefix}/{name}", f"{value:.6g}"])
        self._file.flush()

    def close(self) -> None:
        if self.enabled:
            self.tb.close()
            self._file.close()
