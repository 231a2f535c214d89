"""SwAV's queue: it fills only after `queue_start` steps and joins Sinkhorn only once full
(stale rows of a fast-changing encoder would otherwise decide the codes)."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import render_lines, to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext import swav as module
from htr_ssl.pretext.swav import SwAV, SwAVConfig

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=16, dropout=0.0)


def test_queue_fills_after_queue_start_and_joins_once_full(monkeypatch):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER)
    swav = SwAV(SwAVConfig(local_crops=0, hidden=16, dim=8, prototypes=4, queue=12,
                           queue_start=1), encoder)
    batch = to_batch(render_lines(3), views=2)  # 3 lines x 2 global views = 6 rows a step
    sinkhorn_rows = []
    real = module.sinkhorn
    monkeypatch.setattr(module, "sinkhorn",
                        lambda s, *a: sinkhorn_rows.append(len(s)) or real(s, *a))
    for _ in range(4):
        swav(encoder, batch)
        swav.after_step(encoder)
    assert int(swav.queue.count) == 12          # step 0 pushed nothing; steps 1-2 filled it
    # Sinkhorn per global view: the batch alone until the queue was full (after step 2)
    assert sinkhorn_rows == [3, 3, 3, 3, 3, 3, 15, 15]


def test_queue_options_are_checked():
    with pytest.raises(ValueError, match="queue_start"):
        SwAVConfig(queue=8, queue_start=-1)
