"""`make demo`: synthetic data -> small CTC recognizer -> test metrics, on a laptop CPU."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from htr_ssl.cli._config import fail, quiet_libraries, to_dataclass, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.cli.train import job_from_config, print_summary
from htr_ssl.data.stats import format_table
from htr_ssl.data.synthetic import GenerateConfig, generate
from htr_ssl.train.finetune import train_recognizer


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="demo")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    gen = to_dataclass(GenerateConfig, cfg.generate)
    if (Path(gen.out_dir) / "ascii" / "lines.txt").exists():
        print(f"[1/3] synthetic data already in {gen.out_dir} (delete it to regenerate)")
    else:
        print(f"[1/3] generating synthetic handwriting into {gen.out_dir}")
        stats = generate(gen)
        print(format_table(stats))
    print("[2/3] training the small CTC recognizer (bf16 on CPU; progress below)")
    try:
        job = job_from_config(cfg)
        summary = train_recognizer(job)
    except user_errors() as err:
        fail(err)
    print("[3/3] evaluation on the writer-disjoint test split")
    print_summary(summary, job.run_dir)


if __name__ == "__main__":
    main()
