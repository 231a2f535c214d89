"""`htr-ssl-generate`: write the built-in synthetic handwriting dataset in the IAM layout."""

from __future__ import annotations

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from htr_ssl.cli._config import command, to_dataclass
from htr_ssl.data.stats import format_table
from htr_ssl.data.synthetic import GenerateConfig, generate


@command("generate", "htr-ssl-generate")
def main(cfg: DictConfig) -> None:
    """Generate with a progress bar, then print the per-split statistics table."""
    gen = to_dataclass(GenerateConfig, cfg)
    gen.out_dir = to_absolute_path(gen.out_dir)
    if gen.font_dir is not None:
        gen.font_dir = to_absolute_path(gen.font_dir)
    gen.progress = True
    stats = generate(gen)
    print(f"\nwrote {gen.out_dir} ({stats['fonts']} fonts, {stats['seconds']} s)")
    print(format_table(stats))


if __name__ == "__main__":
    main()
