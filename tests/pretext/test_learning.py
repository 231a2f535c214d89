"""Each pretext's own metric rises clearly above chance within a short CPU run on rendered lines.

This is what says a pretext is a task the encoder can learn, not just code that runs: targets
that do not match their inputs, or a head that cannot see the encoder, stay at chance.
"""

from __future__ import annotations

import pytest
import torch
from pretext_lines import to_batch

from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.model import build_pretext_model
from htr_ssl.pretext.registry import PRETEXTS, pretext_config

ENCODER = EncoderConfig("small", 32, lstm_layers=1, lstm_hidden=32, dropout=0.0)
# name -> (steps, the metric read, chance level of that metric in %, margin above chance)
EXPECT = {
    "rotation": (40, "acc", 50.0, 25.0),
    "flip": (100, "acc", 25.0, 25.0),
    # retrieval of the positive among the held-out instances (16 lines x 5 windows, or 16 lines
    # for simclr): an untrained encoder already finds 38-44 % on these mildly augmented views,
    # so the margins sit above that (trained: seqclr 75, simclr 88, vicreg 60, barlow 72). The
    # decorrelation losses get 40 steps: after 30, another CPU's kernels (and 1 vs 2 threads)
    # left them a point under the bar (barlow 52.5, vicreg 47.5); after 40: 67-81 and 76-79
    "seqclr": (30, "acc", 1.25, 55.0),
    "simclr": (40, "acc", 6.25, 50.0),
    "vicreg": (40, "acc", 1.25, 49.0),
    "barlow": (40, "acc", 1.25, 52.0),
    # puzzles on 3 strips here (defaults: 4, for long lines): these rendered lines hold 2-4
    # words, and 4 strips of them need longer than this budget (4 seeds: jigsaw 44-75 %,
    # sorting 62-83 % after 50 steps)
    "jigsaw": (50, "acc", 100 / 6, 20.0),
    "sorting": (50, "acc", 100 / 3, 20.0),
    # bootstrap: the predictor's output retrieves its own target among the 80 held-out windows;
    # this starts at chance (random predictor) and climbs slowly without negatives (trained:
    # byol 6-9 %, simsiam 7 %)
    "byol": (20, "acc", 1.25, 3.0),
    "simsiam": (24, "acc", 1.25, 3.0),
    # chaco: each 16-px crop finds its counterpart among the 64 held-out crops (16 lines x 4;
    # untrained 12.5 %); cmtco: the contrastive retrieval among 80 windows, as seqclr's
    # (untrained 39 %); its movement accuracy is too noisy on 16 lines to gate (docs/pretexts.md)
    "chaco": (30, "acc", 100 / 64, 25.0),
    "cmtco": (30, "acc", 1.25, 55.0),
    # masked: the true feature of a masked frame among 1 + 20 candidates (trained: 16 %)
    "masked": (24, "acc", 100 / 21, 6.0),
    # issue 18, one seed each on this harness (held-out figure after training in brackets):
    # moco retrieves its key among 80 keys + the 3,200 queued ones (56 %; chance 0.03 %)
    "moco": (40, "acc", 0.0, 40.0),
    # cpc: the true frame 1..12 ahead among 1 + 20 candidates (7.5 %; trains to 19 % on seen
    # lines in the same 30 steps: the held-out figure is what a short run gives)
    "cpc": (30, "acc", 100 / 21, 2.0),
    # inpaint: a reconstructed 1-frame span nearest its own patch among 21 (13.4 %); wider
    # spans need far more than a test's budget (span 2 stays at chance after 40 steps)
    "inpaint": (80, "acc", 100 / 21, 5.0),
    # context: 4 relative-position classes of two 64-px strips, trained on 80 real lines and
    # scored on 113 pairs of 32 lines of two other documents (see REAL), at lr 1e-3: 50.4-60.2 %
    # after 100 steps (seeds 0-3, two threads; 56.6 % on one; at 2e-3 44-60 %)
    "context": (100, "acc", 25.0, 15.0),
    # dino: student retrieves the teacher's output of the other view among 16 lines (15.6 %),
    # at lr 5e-4 (2e-3 collapses it to one output, 6.25 %)
    "dino": (30, "acc", 6.25, 5.0),
    # swav: view-to-view retrieval among 16 lines, untrained 22-25 %; 53 % after 30 steps
    # without the queue (with 512 queued rows joining Sinkhorn: 22 %, the reason it is off)
    "swav": (30, "acc", 6.25, 25.0),
    # persec: the semantic level's true frame among 1 + 20 candidates, span 2 (see OVERRIDES);
    # untrained 3.5 %; after 80 steps 55.0 / 59.5 / 50.5 / 55.0 % (seeds 0-3, one thread;
    # stroke level 67 / 50 / 33 / 55 %). Span 3 got there on only two of four seeds (18-50 %)
    "persec": (80, "acc", 100 / 21, 25.0),
}
# name -> config values that differ from the defaults in the learning run
OVERRIDES: dict[str, dict] = {
    "jigsaw": {"strips": 3, "permutations": 6},
    "sorting": {"strips": 3},
    "chaco": {"width": 16, "jitter": 2},  # the rendered lines are 32 px high
    "cmtco": {"strip": 8, "step": 8},
    "moco": {"momentum": 0.9},  # 0.99 leaves the key encoder near its start in 40 steps
    "inpaint": {"span": 1, "ratio": 0.15},
    "dino": {"local_crops": 0, "momentum": 0.9, "out_dim": 256, "teacher_temp": 0.07},
    "swav": {"local_crops": 0},
    "persec": {"span": 2},  # 8 px spans: 5 frames (20 px) hide most of a 32-px line's letter
}
LR = {"dino": 5e-4, "context": 1e-3}
# Pretexts checked on real handwriting (the `real_lines` fixture; skipped without ../shared):
# where strip B lies relative to strip A is told by the cues of real lines (margins and line
# starts, the drift of the baseline, what letter shapes follow which), which the rendered
# lines lack (straight baselines, random words): there context stayed at 19-37 % after 50-100
# steps, memorizing the 80 training lines; on real lines it generalizes to unseen documents
# (htr-ssl-pretrain data=cremma pretext=context: 55.8 % after 300 steps, docs/pretexts.md)
REAL = {"context"}


def train_and_score(name: str, lines, steps: int, overrides: dict | None = None
                    ) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_pretext_model(ENCODER, {name: pretext_config(name, overrides)})
    opt = torch.optim.AdamW(model.parameters(), lr=LR.get(name, 2e-3))
    train, held_out = lines[:80], lines[80:]
    for step in range(steps):
        i = (step * 16) % len(train)
        loss, _ = model(to_batch(train[i:i + 16], model.views, seed=step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step()  # momentum targets follow (as the training loop does)
    model.eval()
    with torch.no_grad():
        torch.manual_seed(123)
        _, metrics = model(to_batch(held_out, model.views, seed=999))
    return {k.split("/", 1)[1]: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_metric_rises_above_chance(name, request):
    steps, key, chance, margin = EXPECT[name]
    lines = request.getfixturevalue("real_lines" if name in REAL else "lines")
    score = train_and_score(name, lines, steps, OVERRIDES.get(name))[key]
    assert score >= chance + margin, f"{name}: {key}={score:.1f}, chance {chance}"


def test_every_pretext_has_a_learning_check():
    assert set(EXPECT) == set(PRETEXTS)
