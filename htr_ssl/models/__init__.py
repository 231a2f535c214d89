"""What computes: encoders (image -> frames) and decoders (frames -> text)."""

from htr_ssl.models.attention import AttentionDecoder, attention_loss
from htr_ssl.models.ctc import CTCHead, ctc_greedy, ctc_loss
from htr_ssl.models.encoders import Encoder, EncoderConfig, build_encoder, count_parameters
from htr_ssl.models.recognizer import (
    DecoderConfig,
    Prediction,
    Recognizer,
    RecognizerConfig,
    build_recognizer,
)

__all__ = [
    "AttentionDecoder",
    "CTCHead",
    "DecoderConfig",
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
