"""DDP is exact: two gloo processes, each training on half of a batch, take the same optimizer
step as one process on the whole batch, through the real `fit`.

Three models: a CTC recognizer (the fine-tuning path), SeqCLR (a contrastive pretext whose
negatives are gathered across ranks, with `contextual: false`, so the BiLSTM gets no gradient
and DDP needs `find_unused_parameters`, which `auto` turns on for pretraining), and the
recognizer with SeqCLR alongside on its own stream of (here the same) images (train/joint.py).

What would otherwise differ, and how the test removes it:
- BatchNorm normalizes with the statistics of the batch it sees: half a batch per rank is not
  the whole batch. `trainer.sync_bn` makes them global (CPUSyncBatchNorm here, tested exact on
  its own in test_sync_batchnorm.py), but statistics summed in another order differ in the
  last bit, enough to flip a few ReLU / max-pool near-ties and with them the sign of a few
  near-zero gradients, which AdamW's first step turns into 2 x lr. So here every BatchNorm
  stays in eval mode (running statistics, `sync_bn` off), which keeps its weights trainable
  but its output independent of the batch split.
- Dropout draws differ per process: the models are built without dropout.
- AdamW's first step is lr * sign(gradient), blind to a wrong gradient *scale* (the classic
  bug of a gathered loss counted `world` times): the test also compares the optimizer's first
  moment (0.1 * gradient) saved in last.pt, with gradient clipping out of the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import (
    DecoderConfig,
    RecognizerConfig,
    build_recognizer,
    recognizer_loss,
)
from htr_ssl.pretext.model import build_pretext_model
from htr_ssl.pretext.model import loss_fn as pretext_loss
from htr_ssl.pretext.seqclr import SeqCLR, SeqCLRConfig
from htr_ssl.train import checkpoint
from htr_ssl.train.distributed import DistInfo
from htr_ssl.train.joint import AuxTask, JointModel, joint_loss
from htr_ssl.train.loop import fit
from htr_ssl.train.trainer_config import TrainerConfig

WORLD, BATCH, LR = 2, 8, 1e-3
NAMES = ("ctc", "seqclr", "joint")
ENCODER = EncoderConfig("small", 32, lstm_hidden=16, dropout=0.0)


def _batch() -> Batch:
    """A fixed batch of 8 lines of different widths, with a second aligned view."""
    g = torch.Generator().manual_seed(0)
    widths = torch.tensor([64, 96, 80, 128, 72, 112, 88, 120])
    images = torch.ones(2, BATCH, 1, 32, 128)
    for i, w in enumerate(widths.tolist()):
        images[:, i, :, :, :w] = torch.rand(1, 1, 32, w, generator=g)
    images[1] = (images[1] + 0.1 * torch.rand(images[1].shape, generator=g)).clamp(0, 1)
    lengths = torch.randint(3, 7, (BATCH,), generator=g)
    targets = torch.randint(1, 11, (BATCH, 6), generator=g) * (torch.arange(6) < lengths[:, None])
    return Batch(images[0], widths, targets, lengths, [str(i) for i in range(BATCH)],
                 [""] * BATCH, views=images)


def _shard(batch: Batch, rank: int) -> Batch:
    """This rank's contiguous half (gathering concatenates ranks in order)."""
    part = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
    views = batch.views[:, part]
    return Batch(views[0], batch.widths[part], batch.targets[part],
                 batch.target_lengths[part], batch.ids[part], batch.texts[part], views=views)


def _freeze_bn_statistics(model: nn.Module) -> nn.Module:
    """Every BatchNorm in eval mode whatever `fit` asks (see the module docstring)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train = lambda mode=True, m=m: nn.Module.train(m, False)  # type: ignore[method-assign]
            m.eval()
    return model


def _model(name: str, batch: Batch | None = None) -> tuple[nn.Module, object]:
    """`batch`: what the joint model's unlabeled stream gives (this rank's shard)."""
    torch.manual_seed(0)
    seqclr = SeqCLRConfig(mapping="window", windows=3, contextual=False, hidden=32, proj_dim=16)
    if name == "seqclr":
        model = build_pretext_model(ENCODER, {"seqclr": seqclr})
        return _freeze_bn_statistics(model), pretext_loss
    model = build_recognizer(RecognizerConfig(ENCODER, DecoderConfig("ctc", dropout=0.0)), 10)
    if name == "joint":  # fine-tuning with SeqCLR alongside (train/joint.py)
        aux = AuxTask(SeqCLR(seqclr, model.encoder), 0.5, _OneBatch(batch or _batch()))
        return _freeze_bn_statistics(JointModel(model, aux)), joint_loss
    return _freeze_bn_statistics(model), recognizer_loss


class _OneBatch:
    """The loader `fit` needs: one fixed batch per epoch."""

    class _Sampler:
        def set_epoch(self, epoch: int, start: int = 0) -> None:
            pass

    def __init__(self, batch: Batch) -> None:
        self.batch, self.batch_size, self.sampler = batch, len(batch), self._Sampler()

    def __iter__(self):
        yield self.batch


CFG = TrainerConfig(max_steps=1, lr=LR, warmup_steps=0, schedule="constant", grad_clip=1e9,
                    precision="fp32", device="cpu", progress=False, log_every=1,
                    checkpoint_every=0, sync_bn=False)


def _train(name: str, batch: Batch, run_dir: Path, info: DistInfo | None = None) -> None:
    model, loss = _model(name, batch)
    fit(model, loss, _OneBatch(batch), CFG, run_dir, dist_info=info)


def _rank(rank: int, store: str, out: str) -> None:
    """One torchrun-like process: gloo group, half of the batch, the real `fit`."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        for name in NAMES:
            _train(name, _shard(_batch(), rank), Path(out) / name, DistInfo(rank, WORLD, rank))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Both models trained one step by 2 processes (ddp/) and by this one (single/)."""
    root = tmp_path_factory.mktemp("ddp")
    ranks = mp.spawn(_rank, args=(str(root / "store"), str(root / "ddp")), nprocs=WORLD,
                     join=False)
    for name in NAMES:  # meanwhile, the reference
        _train(name, _batch(), root / "single" / name)
    while not ranks.join():
        pass
    return root


@pytest.mark.parametrize("name", NAMES)
def test_ddp_step_equals_one_process_on_the_whole_batch(runs, name):
    ddp = checkpoint.load(runs / "ddp" / name / "last.pt")
    one = checkpoint.load(runs / "single" / name / "last.pt")
    start, _ = _model(name)
    moved = 0.0
    for key, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=0, atol=LR * 1e-2, msg=key)
        if value.is_floating_point():
            moved = max(moved, float((value - start.state_dict()[key]).abs().max()))
    assert moved > 0.5 * LR  # the step did move the weights
    moments = [(s["exp_avg"], ddp["optimizer"]["state"][i]["exp_avg"])
               for i, s in one["optimizer"]["state"].items()]
    assert len(moments) == len(ddp["optimizer"]["state"]) > 0
    for ref, got in moments:  # 0.1 x gradient: same scale, not just same sign
        torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-4 * float(ref.abs().max()))


def test_contextual_false_leaves_the_bilstm_without_gradient(runs):
    """The case `find_unused_parameters` exists for: without it, DDP would wait forever for
    these parameters' gradients."""
    one = checkpoint.load(runs / "single" / "seqclr" / "last.pt")
    model, _ = _model("seqclr")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    stepped = {names[i] for i in one["optimizer"]["state"]}
    lstm = {n for n in names if ".lstm." in n}
    assert lstm and not lstm & stepped and stepped
