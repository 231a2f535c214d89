"""The reading recognizer's checkpoint file, once per session."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from recognizer_files import ALPHABET, CONFIG, reader

from htr_ssl.train import checkpoint


@pytest.fixture(scope="session")
def reader_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "best.pt"
    checkpoint.save({"model": reader().state_dict(), "kind": "recognizer",
                     "alphabet": ALPHABET.to_dict(), "model_config": asdict(CONFIG),
                     "loop": {"step": 7}}, path)
    return path
