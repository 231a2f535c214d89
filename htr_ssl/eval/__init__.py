"""How a recognizer is judged: decoding, metrics, result files."""
