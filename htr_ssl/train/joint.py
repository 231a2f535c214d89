"""Fine-tuning with a pretext alongside: S4L (Zhai et al. 2019), self-supervised
semi-supervised learning.

Why: a pretrained encoder fine-tuned on 122 labeled lines forgets what the 2,400 unlabeled ones
taught it, and with a long enough fine-tuning scratch catches up (docs/results.md). Here each
step adds `weight` x a pretext's loss on a batch of the training split's images (all of them,
labeled or not, texts never read) to the recognizer's loss, so the unlabeled lines keep shaping
the encoder for the whole run.

`JointModel` registers the recognizer's own layers under their own names and the pretext under
`aux.`: its checkpoints read as the recognizer's (`encoder.*`, `ctc.*`, ...) plus `aux.*`
keys, which the recognizer loaders leave out (`model_file.recognizer_weights`), and
`finetune.freeze_steps` still finds the `encoder.` parameters. Where the unlabeled stream stands
(epoch, batch) is in `aux.*` too, so a resumed run draws the same unlabeled batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from htr_ssl.data.sample import Batch
from htr_ssl.inference.model_file import AUX_PREFIX
from htr_ssl.models.recognizer import Recognizer, recognizer_loss
from htr_ssl.pretext.base import Pretext


class AuxTask(nn.Module):
    """A pretext, its loss weight, and an endless stream of unlabeled batches that resumes
    where it stood (the position is saved as buffers)."""

    def __init__(self, pretext: Pretext, weight: float, loader: DataLoader) -> None:
        super().__init__()
        self.pretext, self.weight, self.loader = pretext, weight, loader
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.register_buffer("batch", torch.zeros((), dtype=torch.long))
        self._batches: Iterator[Batch] | None = None

    def next_batch(self) -> Batch:
        """The stream's next batch; a new epoch (a new order) when one runs out."""
        while True:
            if self._batches is None:
                size = self.loader.batch_size or 1
                self.loader.sampler.set_epoch(int(self.epoch), start=int(self.batch) * size)
                self._batches = iter(self.loader)
            batch = next(self._batches, None)
            if batch is not None:
                self.batch += 1
                return batch
            self.epoch += 1
            self.batch.zero_()
            self._batches = None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._batches = None  # the stream restarts at the loaded position

    def forward(self, encoder: nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.pretext(encoder, self.next_batch().to(self.epoch.device))


class JointModel(nn.Module):
    """The recognizer's layers (same names) plus `aux`: what S4L fine-tuning optimizes."""

    def __init__(self, recognizer: Recognizer, aux: AuxTask) -> None:
        super().__init__()
        for name, child in recognizer.named_children():
            if name == AUX_PREFIX.rstrip("."):
                raise ValueError(f"the recognizer has a layer named {name!r}")
            self.add_module(name, child)
        self.aux = aux
        self._recognizer = (recognizer,)  # a tuple: its layers are registered once, above

    @property
    def recognizer(self) -> Recognizer:
        return self._recognizer[0]

    def after_step(self) -> None:
        """The pretext's momentum targets follow the encoder (the loop calls it)."""
        self.aux.pretext.after_step(self.recognizer.encoder)


def joint_loss(model: JointModel, batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
    """The recognizer's loss on `batch` + weight x the pretext's loss on an unlabeled batch."""
    loss, metrics = recognizer_loss(model.recognizer, batch)
    aux_loss, aux_metrics = model.aux(model.recognizer.encoder)
    metrics = {**metrics, "aux/loss": aux_loss.detach(),
               **{f"aux/{k}": v for k, v in aux_metrics.items()}}
    return loss + model.aux.weight * aux_loss, metrics
