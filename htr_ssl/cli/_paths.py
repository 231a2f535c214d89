"""Where the Hydra configs live, so console commands work from any working directory."""

from pathlib import Path

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
