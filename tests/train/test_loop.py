"""The shared training loop: exact resumption, NaN guard, early stopping, no overwrites."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.pipeline import DataConfig, make_loader
from htr_ssl.data.sample import Sample
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.train import checkpoint
from htr_ssl.train.loop import TrainingDiverged, fit
from htr_ssl.train.trainer_config import TrainerConfig


class Toy(nn.Module):
    """Predicts the target length from the image: enough to have a loss that moves."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.3),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 1)
        self.poison = False

    def forward(self, images, lengths):
        pred = self.head(self.encoder(images)).squeeze(1)
        loss = ((pred - lengths.float()) ** 2).mean()
        return loss * float("nan") if self.poison else loss


def toy_loss(model, batch):
    loss = model(batch.images, batch.target_lengths)
    return loss, {"len": float(batch.target_lengths.float().mean())}


@pytest.fixture()
def loader(tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 20 + 3 * i), dtype=np.uint8)).save(path)
        samples.append(Sample(str(i), path, "ab"[: 1 + i % 2] * (1 + i % 3)))
    cfg = DataConfig(height=16, batch_size=3, augment=AugmentConfig("htr", 0.8))
    return make_loader(samples, Alphabet(("a", "b")), cfg, train=True, seed=5)


def _cfg(**kw) -> TrainerConfig:
    base = {"max_steps": 9, "lr": 0.05, "warmup_steps": 2, "val_every": 4, "log_every": 2,
            "device": "cpu", "progress": False, "precision": "fp32"}
    return TrainerConfig(**{**base, **kw})


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_continues_exactly(loader, tmp_path, monkeypatch):
    torch.manual_seed(0)
    straight = Toy()
    fit(straight, toy_loss, loader, _cfg(), tmp_path / "a")

    save = checkpoint.save

    def keep_step_5(state, path):  # last.pt of step 5 is replaced at step 9: keep a copy
        save(state, path)
        if path.name == "last.pt" and state["loop"]["step"] == 5:
            save(state, path.with_name("mid.pt"))

    monkeypatch.setattr(checkpoint, "save", keep_step_5)
    torch.manual_seed(0)
    half = Toy()
    res = fit(half, toy_loss, loader, _cfg(max_steps=9, val_every=5), tmp_path / "d",
              validate=lambda m: {"cer": 1.0})
    # re-run the second half from the step-5 checkpoint (mid-epoch: 4 batches per epoch)
    mid = checkpoint.load(tmp_path / "d" / "mid.pt")
    assert mid["loop"]["step"] == 5 and mid["loop"]["batch_in_epoch"] == 1
    best = checkpoint.load(tmp_path / "d" / "best.pt")  # weights only: no optimizer state
    assert "optimizer" not in best and best["loop"]["step"] == 5
    with pytest.raises(checkpoint.CheckpointError, match=r"lacks optimizer.*last\.pt"):
        fit(Toy(), toy_loss, loader, _cfg(max_steps=9), tmp_path / "d3",
            resume=tmp_path / "d" / "best.pt")
    resumed = Toy()
    fit(resumed, toy_loss, loader, _cfg(max_steps=9, val_every=5), tmp_path / "d2",
        resume=tmp_path / "d" / "mid.pt")
    for k, v in _weights(straight).items():
        torch.testing.assert_close(_weights(resumed)[k], v, rtol=0, atol=0)
        torch.testing.assert_close(_weights(half)[k], v, rtol=0, atol=0)
    assert res.step == 9
    assert (tmp_path / "d" / "log.csv").read_text().startswith("step,tag,value")


def test_refuses_to_overwrite_a_finished_run(loader, tmp_path):
    fit(Toy(), toy_loss, loader, _cfg(max_steps=2), tmp_path / "run")
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(FileExistsError, match="resume="):
        fit(Toy(), toy_loss, loader, _cfg(max_steps=2), tmp_path / "run")
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_nan_steps_are_skipped_then_stop(loader, tmp_path):
    model = Toy()
    model.poison = True
    before = _weights(model)
    with pytest.raises(TrainingDiverged, match="3 steps in a row"):
        fit(model, toy_loss, loader, _cfg(max_bad_steps=3), tmp_path / "nan")
    for k, v in before.items():
        assert torch.equal(model.state_dict()[k], v), "a NaN step must not change weights"
    assert (tmp_path / "nan" / "diverged.pt").exists()


def test_early_stopping_and_best(loader, tmp_path):
    scores = iter([5.0, 4.0, 4.5, 4.4, 4.3, 1.0])
    res = fit(Toy(), toy_loss, loader, _cfg(max_steps=100, val_every=1, patience=3),
              tmp_path / "es", validate=lambda m: {"cer": next(scores)})
    assert res.stopped_early and res.step == 5 and res.best == 4.0
    assert checkpoint.load(res.best_path)["loop"]["step"] == 2


def test_trainer_config_validation():
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(precision="fp16")
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load(Path("/nonexistent/last.pt"))


def test_unreadable_images_are_counted_not_fatal(loader, tmp_path, caplog):
    (Path(loader.dataset.samples[3].image_path)).write_bytes(b"broken")
    res = fit(Toy(), toy_loss, loader, _cfg(max_steps=4), tmp_path / "bad")
    assert res.step == 4
    assert "unreadable images were left out of training" in caplog.text


def test_param_group_is_held_still_until_its_start_step(tmp_path, loader):
    """A delayed group gets no update before its start step, then moves; the others move from
    the first step; a prefix that matches nothing is an error."""
    from htr_ssl.train.trainer_config import ParamGroup

    torch.manual_seed(0)
    model = Toy()
    start = _weights(model)
    cfg = _cfg(max_steps=3, val_every=100, checkpoint_every=0, warmup_steps=1)
    fit(model, toy_loss, loader, cfg, tmp_path / "a", groups=(ParamGroup("encoder.", 0.5, 3),))
    after = _weights(model)
    assert torch.equal(after["encoder.0.weight"], start["encoder.0.weight"])
    assert not torch.equal(after["head.weight"], start["head.weight"])
    assert all(p.requires_grad for p in model.parameters())  # released at the end

    fit(model, toy_loss, loader, _cfg(max_steps=5, val_every=100, checkpoint_every=0),
        tmp_path / "b", groups=(ParamGroup("encoder.", 0.5, 3),))
    assert not torch.equal(_weights(model)["encoder.0.weight"], after["encoder.0.weight"])
    with pytest.raises(ValueError, match="decoder"):
        fit(Toy(), toy_loss, loader, cfg, tmp_path / "c", groups=(ParamGroup("decoder."),))


def test_delayed_schedule_ramps_after_its_start():
    from htr_ssl.train.schedule import delayed

    f = delayed(lambda s: 1.0, start=3, warmup=2, scale=0.5)
    assert [f(s) for s in range(6)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]


@pytest.mark.parametrize("decay", ["all", "weights"])
def test_decay_weights_spares_biases_and_norm_scales(loader, tmp_path, decay):
    """With a zero loss only weight decay moves parameters: `weights` leaves 1-D ones alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    before = _weights(model)

    def no_gradient_loss(m, batch):
        return 0.0 * m(batch.images).sum(), {}

    cfg = _cfg(max_steps=3, decay=decay, weight_decay=0.5, schedule="constant",
               warmup_steps=0)
    fit(model, no_gradient_loss, loader, cfg, tmp_path / decay)
    shrink = (1 - 0.05 * 0.5) ** 3
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        spared = decay == "weights" and not name.startswith("0.weight")
        expected = before[name] if spared else before[name] * shrink
        torch.testing.assert_close(model.state_dict()[name], expected, rtol=1e-5, atol=1e-7)


def test_decay_option_is_checked():
    with pytest.raises(ValueError, match=r"trainer\.decay='none'; valid: all, weights"):
        _cfg(decay="none")
