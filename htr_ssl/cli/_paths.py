"""Where the Hydra configs live, so console commands work from any working directory."""

from pathlib import Path

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")


def group_choices(group: str) -> list[str]:
    """The choices of config group `group` (`data` -> alto, cremma, ...): its files, less the
    internal ones whose name starts with `_` (configs/data/_common.yaml, which the others
    start from)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml")
                  if not p.stem.startswith("_"))
