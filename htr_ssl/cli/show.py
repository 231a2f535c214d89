"""htr-ssl-show FILE: what a model file (checkpoint or export) is (configs/show.yaml)."""

from __future__ import annotations

import yaml
from omegaconf import DictConfig

from htr_ssl.cli._config import command
from htr_ssl.inference.model_file import describe


def readable(info: dict) -> dict:
    """The alphabet as its size and characters in one string, not a list."""
    alphabet = info.get("alphabet")
    if isinstance(alphabet, dict) and "chars" in alphabet:
        info = {**info, "alphabet": {"size": len(alphabet["chars"]),
                                     "characters": "".join(alphabet["chars"])}}
    return info


@command("show", "htr-ssl-show", positional="checkpoint")
def main(cfg: DictConfig) -> None:
    info = readable(describe(cfg.checkpoint))
    print(yaml.safe_dump(info, allow_unicode=True, sort_keys=False, width=100), end="")


if __name__ == "__main__":
    main()
