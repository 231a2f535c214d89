"""The model pretraining optimizes: one encoder shared by one or more weighted pretexts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from htr_ssl.data.sample import Batch
from htr_ssl.models.encoders import Encoder, EncoderConfig, build_encoder
from htr_ssl.pretext.base import Pretext
from htr_ssl.pretext.registry import build_pretext, pretext_config


class PretextModel(nn.Module):
    """`encoder` + `pretexts` (a ModuleDict by name) with a weight each.

    The loss is the weighted sum of the pretexts' losses; metrics are prefixed with the
    pretext's name ("rotation/acc").
    """

    def __init__(self, encoder: Encoder, pretexts: dict[str, Pretext],
                 weights: dict[str, float] | None = None) -> None:
        super().__init__()
        if not pretexts:
            raise ValueError("pretraining needs at least one pretext")
        self.encoder = encoder
        self.pretexts = nn.ModuleDict(pretexts)
        self.weights = {name: 1.0 for name in pretexts} | dict(weights or {})

    @property
    def views(self) -> int:
        """Aligned views per image the data loader must supply (the most any pretext needs)."""
        return max(p.views for p in self.pretexts.values())

    @property
    def method(self) -> str:
        return "+".join(self.pretexts)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total: torch.Tensor | float = 0.0
        metrics: dict[str, torch.Tensor] = {}
        for name, pretext in self.pretexts.items():
            loss, m = pretext(self.encoder, batch)
            total = total + self.weights[name] * loss
            metrics[f"{name}/loss"] = loss.detach()
            metrics.update({f"{name}/{k}": v for k, v in m.items()})
        return total, metrics  # type: ignore[return-value]

    def after_step(self) -> None:
        """After each optimizer step (the training loop calls it): momentum targets move."""
        for pretext in self.pretexts.values():
            pretext.after_step(self.encoder)


def build_pretext_model(encoder_cfg: EncoderConfig, pretexts: dict[str, Any],
                        weights: dict[str, float] | None = None,
                        encoder: Encoder | None = None) -> PretextModel:
    """`pretexts` maps names to their config dataclasses. A given `encoder` (e.g. one already
    trained) is used as it is, before any pretext copies it (BYOL's momentum target)."""
    encoder = encoder or build_encoder(encoder_cfg)
    return PretextModel(encoder, {n: build_pretext(n, c, encoder) for n, c in pretexts.items()},
                        weights)


def checkpoint_meta(model: PretextModel) -> dict[str, Any]:
    """What a pretext checkpoint stores besides weights, to rebuild the model and describe it."""
    return {"kind": "pretext", "method": model.method,
            "encoder_config": asdict(model.encoder.cfg),
            "pretexts": {n: {"config": asdict(p.cfg), "weight": model.weights[n]}
                         for n, p in model.pretexts.items()}}


def pretext_model_from_checkpoint(ckpt: dict[str, Any]) -> PretextModel:
    """Rebuild a pretraining run's model (encoder and heads) with its weights."""
    if ckpt.get("kind") != "pretext":
        raise ValueError(f"this is a {ckpt.get('kind', 'unknown')!r} checkpoint, not a pretext one")
    pretexts = {n: pretext_config(n, v["config"]) for n, v in ckpt["pretexts"].items()}
    weights = {n: v["weight"] for n, v in ckpt["pretexts"].items()}
    model = build_pretext_model(EncoderConfig(**ckpt["encoder_config"]), pretexts, weights)
    model.load_state_dict(ckpt["model"])
    return model


def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The `fit` loss function for pretraining."""
    return model(batch)
