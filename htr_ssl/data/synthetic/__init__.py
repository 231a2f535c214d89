"""Built-in synthetic handwriting: Hershey/TTF rendering written out in the IAM layout."""

from htr_ssl.data.synthetic.generate import GenerateConfig, generate, split_writers

__all__ = ["GenerateConfig", "generate", "split_writers"]
