"""MoCo's `batch_acc`: retrieval among the batch's keys only, untouched by what the queue holds
(at validation the queue's keys come from training-mode BatchNorm statistics)."""

from __future__ import annotations

import pytest
import torch
from pretext_lines import render_lines, to_batch

from htr_ssl.models.encoders import EncoderConfig, build_encoder
from htr_ssl.pretext.moco import MoCo, MoCoConfig

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=16, dropout=0.0)


def test_batch_acc_ignores_the_queue_acc_does_not():
    torch.manual_seed(0)
    encoder = build_encoder(ENCODER).eval()
    moco = MoCo(MoCoConfig(mapping="line", hidden=16, proj_dim=8, queue=64), encoder).eval()
    batch = to_batch(render_lines(6), views=2)
    queries = []
    moco.head.register_forward_hook(lambda _m, _i, out: queries.append(out.detach()))
    with torch.no_grad():
        _, empty = moco(encoder, batch)
        assert float(empty["acc"]) == float(empty["batch_acc"])
        # the queries of view 1 themselves as queued rows: each is its own query's exact
        # match, so they beat that query's key (of the other view) and `acc` must drop
        moco.queue.push(queries[0][:6])
        _, filled = moco(encoder, batch)
    assert float(filled["acc"]) < float(empty["acc"])
    assert float(filled["batch_acc"]) == float(empty["batch_acc"])
    assert float(filled["chance"]) == pytest.approx(100 / (6 + 6))
