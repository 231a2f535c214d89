"""A recognizer that reads something: random weights, sharpened (tests/inference)."""

from __future__ import annotations

import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import (
    DecoderConfig,
    Recognizer,
    RecognizerConfig,
    build_recognizer,
)

ALPHABET = Alphabet(tuple(" abcdefé"))
CONFIG = RecognizerConfig(EncoderConfig("small", 32, lstm_hidden=32), DecoderConfig("ctc"))


def reader() -> Recognizer:
    """Untrained, but with a CTC head sharp enough that each line reads as some text."""
    torch.manual_seed(0)
    model = build_recognizer(CONFIG, ALPHABET)
    with torch.no_grad():
        model.ctc.proj.weight.mul_(40)
    return model.eval()
