"""Reading text with a trained recognizer: model files (htr-ssl checkpoints and portable
safetensors exports), inputs (images, PAGE, ALTO) and outputs. Nothing here imports the
training code, so a reading installation needs only what a model reads with."""
