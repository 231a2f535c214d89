"""htr-ssl: self-supervised pretraining and low-label fine-tuning of handwriting recognizers."""

__version__ = "0.1.0"
