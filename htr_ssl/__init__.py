"""htr-ssl: self-supervised pretraining and low-label fine-tuning of handwritten text recognizers."""

__version__ = "0.1.0"
