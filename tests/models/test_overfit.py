"""The small model must learn: each decoder overfits four rendered lines to an exact decode.

If any of these fail, something between the encoder, the heads and the losses does not pass
gradient or does not decode what it trained on; no real-data run can make up for that.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

TEXTS = ["hello world", "abc", "quick fox", "jumps"]
HEIGHT = 32


def render(text: str, height: int = HEIGHT) -> np.ndarray:
    """Dark Hershey text on white, `height` rows, width fitted to the text."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.7, 1
    (w, _), _ = cv2.getTextSize(text, font, scale, thick)
    img = np.full((height, w + 8), 255, np.uint8)
    cv2.putText(img, text, (4, height - 10), font, scale, 0, thick, cv2.LINE_AA)
    return img


def make_batch(alphabet: Alphabet) -> tuple[torch.Tensor, ...]:
    imgs = [render(t) for t in TEXTS]
    widths = torch.tensor([im.shape[1] for im in imgs])
    images = torch.ones(len(imgs), 1, HEIGHT, int(widths.max()))
    for i, im in enumerate(imgs):
        images[i, 0, :, : im.shape[1]] = torch.from_numpy(im).float() / 255.0
    lengths = torch.tensor([len(t) for t in TEXTS])
    targets = torch.zeros(len(TEXTS), int(lengths.max()), dtype=torch.long)
    for i, t in enumerate(TEXTS):
        targets[i, : len(t)] = torch.tensor(alphabet.encode(t))
    return images, widths, targets, lengths


@pytest.mark.parametrize("decoder", ["ctc", "attention", "hybrid"])
def test_small_model_overfits_four_lines(decoder: str) -> None:
    torch.manual_seed(0)
    alphabet = Alphabet.from_texts(TEXTS)
    cfg = RecognizerConfig(EncoderConfig("small", HEIGHT, lstm_layers=1, dropout=0.0),
                           DecoderConfig(decoder, attn_hidden=128, attn_emb=32, max_len=20,
                                         dropout=0.0))
    model = build_recognizer(cfg, alphabet)
    images, widths, targets, lengths = make_batch(alphabet)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    modes = ["ctc", "attention"] if decoder == "hybrid" else [decoder]
    for step in range(300):
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, metrics = model.loss(images, widths, targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert metrics["skipped"] == 0
        if step % 25 == 24:
            model.eval()
            decoded = {m: [alphabet.decode(ids) for ids in model.predict(images, widths, m).ids]
                       for m in modes}
            if all(d == TEXTS for d in decoded.values()):
                break
    else:
        pytest.fail(f"did not overfit in 300 steps: {decoded}, loss {metrics}")
    print(decoder, "converged at step", step + 1)
