"""What computes: encoders (image -> frames) and decoders (frames -> text)."""

from htr_ssl.models.decoders import (
    AttentionDecoder,
    CTCHead,
    Prediction,
    Recognizer,
    RecognizerConfig,
    attention_loss,
    build_recognizer,
    ctc_greedy,
    ctc_loss,
)
from htr_ssl.models.encoders import Encoder, EncoderConfig, build_encoder, count_parameters

__all__ = [
    "AttentionDecoder",
    "CTCHead",
    "Encoder",
    "EncoderConfig",
    "Prediction",
    "Recognizer",
    "RecognizerConfig",
    "attention_loss",
    "build_encoder",
    "build_recognizer",
    "count_parameters",
    "ctc_greedy",
    "ctc_loss",
]
