"""htr-ssl-show FILE: what a model file (checkpoint or export) is (configs/show.yaml)."""

from __future__ import annotations

import sys

import hydra
import yaml
from omegaconf import DictConfig

from htr_ssl.cli._config import fail, positional, quiet_logging, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.inference.model_file import describe


def readable(info: dict) -> dict:
    """The alphabet as its size and characters in one string, not a list."""
    alphabet = info.get("alphabet")
    if isinstance(alphabet, dict) and "chars" in alphabet:
        info = {**info, "alphabet": {"size": len(alphabet["chars"]),
                                     "characters": "".join(alphabet["chars"])}}
    return info


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="show")
def _main(cfg: DictConfig) -> None:
    quiet_logging()
    try:
        info = readable(describe(cfg.checkpoint))
    except user_errors() as err:
        fail(err)
    print(yaml.safe_dump(info, allow_unicode=True, sort_keys=False, width=100), end="")


def main() -> None:
    sys.argv = positional(sys.argv, "checkpoint")
    _main()


if __name__ == "__main__":
    main()
