"""What benchmarks/throughput.py times: batches of real line widths, and one step of each
workload (a pretext's training step, a CTC fine-tuning step, greedy and beam inference), plus
the measuring tools (FLOP count, peak memory; the matmul peak is in _results)."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from _results import now
from torch import nn
from torch.nn.modules.module import register_module_forward_hook
from torch.utils.flop_counter import FlopCounterMode

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.sample import Batch
from htr_ssl.data.sampler import EpochSampler
from htr_ssl.eval.decoding import CTCBeamDecoder
from htr_ssl.inference.runtime import autocast
from htr_ssl.models.encoders import Encoder, EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer
from htr_ssl.pretext.model import build_pretext_model
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train.speed import adamw, compile_model

Step = Callable[[Batch], None]
CHARS = tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'\"!?()-&/#*+")


def make_batches(aspects: list[float], height: int, batch: int, count: int, bucket: bool,
                 views: int, seed: int = 0) -> list[Batch]:
    """`count` batches of random pixels with the widths of real lines (`aspects` = width /
    height), grouped by the training sampler: bucketed by width, or in random order."""
    sampler = EpochSampler(len(aspects), seed=seed, widths=aspects if bucket else None,
                           batch_size=batch)
    order = [i for i, _ in sampler]
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(count):
        idx = [order[(k * batch + j) % len(order)] for j in range(batch)]
        widths = torch.tensor([max(height, round(aspects[i] * height)) for i in idx])
        padded = -(-int(widths.max()) // 32) * 32  # as collate pads
        images = torch.ones(views, batch, 1, height, padded)
        for j, w in enumerate(widths.tolist()):
            images[:, j, :, :, :w] = torch.rand(views, 1, height, w, generator=g)
        lengths = (widths // (4 * height // 8)).clamp(1, 60)  # ~2 characters per height
        targets = torch.randint(1, len(CHARS) + 1, (batch, int(lengths.max())), generator=g)
        targets *= torch.arange(targets.shape[1]) < lengths[:, None]
        out.append(Batch(images[0], widths, targets, lengths, [str(i) for i in idx],
                         [""] * batch, views=images if views > 1 else None))
    return out


def pretext_step(name: str, preset: str, height: int, device: torch.device, precision: str,
                 compile_: bool = False) -> tuple[Step, int]:
    """One optimizer step of pretraining with pretext `name`; and the views it needs."""
    torch.manual_seed(0)
    model = build_pretext_model(EncoderConfig(preset, height), {name: pretext_config(name)})
    model.to(device).train()
    if compile_:
        compile_model(model)
    opt = adamw(model.parameters(), device, lr=1e-4)

    def step(batch: Batch) -> None:
        with autocast(device, precision):
            loss, _ = model(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step.model = model  # type: ignore[attr-defined]  # for flops_per_pixel
    return step, model.views


def _recognizer(preset: str, height: int, device: torch.device, compile_: bool):
    torch.manual_seed(0)
    cfg = RecognizerConfig(EncoderConfig(preset, height), DecoderConfig("ctc"))
    model = build_recognizer(cfg, len(CHARS)).to(device)
    return compile_model(model) if compile_ else model


def finetune_step(preset: str, height: int, device: torch.device, precision: str,
                  compile_: bool = False) -> Step:
    """One optimizer step of CTC training (as htr_ssl.train.finetune.loss_fn)."""
    model = _recognizer(preset, height, device, compile_).train()
    opt = adamw(model.parameters(), device, lr=1e-4)

    def step(batch: Batch) -> None:
        with autocast(device, precision):
            loss, _ = model.loss(batch.images, batch.widths, batch.targets,
                                 batch.target_lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step.model = model  # type: ignore[attr-defined]
    return step


def infer_step(preset: str, height: int, device: torch.device, precision: str,
               beam: int, compile_: bool = False) -> Step:
    """Reading a batch: greedy best path (beam 1) or flashlight beam search (CPU)."""
    model = _recognizer(preset, height, device, compile_).eval()
    decoder = CTCBeamDecoder(Alphabet(CHARS), beam_size=beam) if beam > 1 else None

    @torch.no_grad()
    def step(batch: Batch) -> None:
        with autocast(device, precision):
            if decoder is None:
                model.predict(batch.images, batch.widths, "ctc")
            else:
                logits, lengths = model.ctc_logits(batch.images, batch.widths)
                decoder(logits, lengths)

    step.model = model  # type: ignore[attr-defined]
    return step


def timed(step: Step, batches: list[Batch], warmup: int, device: torch.device) -> float:
    """Seconds for the batches after the first `warmup` (kernel selection, allocator)."""
    for b in batches[:warmup]:
        step(b)
    _sync(device)
    start = now()
    for b in batches[warmup:]:
        step(b)
    _sync(device)
    return now() - start


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of the matmuls, convolutions and LSTMs that `fn()` runs (forward and backward).
    torch.utils.flop_counter counts aten matmuls and convolutions but neither the fused LSTM
    kernels, which are added from their shapes (4 gates: 2 * 4H * (I + H) per step and
    direction; backward twice the forward), nor oneDNN's fused convolutions: count a model
    with `encoder.set_fused(False)` (the same arithmetic)."""
    lstm = [0.0]

    def count_lstm(module: nn.Module, inputs: tuple, _output: object) -> None:
        if isinstance(module, nn.LSTM):
            x = inputs[0]
            steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
            h, dirs = module.hidden_size, 2 if module.bidirectional else 1
            dims = [module.input_size] + [h * dirs] * (module.num_layers - 1)
            fwd = sum(2 * 4 * h * (d + h) * steps * dirs for d in dims)
            lstm[0] += fwd * (3 if torch.is_grad_enabled() else 1)

    hook = register_module_forward_hook(count_lstm)
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        hook.remove()
    return counter.get_total_flops() + lstm[0]


@contextlib.contextmanager
def plain_path(model: nn.Module | None) -> Iterator[None]:
    """The model's encoders on their plain path for the duration (see count_flops)."""
    encoders = [m for m in model.modules() if isinstance(m, Encoder)] if model else []
    for encoder in encoders:
        encoder.set_fused(False)
    try:
        yield
    finally:
        for encoder in encoders:
            encoder.set_fused(True)


def flops_per_pixel(step: Step, batch: Batch) -> float:
    """FLOPs of one step per padded pixel: the network's cost is linear in the padded width.
    Counted on the plain path of the step's `model` (see count_flops)."""
    with plain_path(getattr(step, "model", None)):
        flops = count_flops(lambda: step(batch))
    return flops / batch.images[..., 0, :, :].numel()


def padded_pixels(batches: list[Batch]) -> int:
    return sum(b.images[..., 0, :, :].numel() for b in batches)


def pad_share(batches: list[Batch]) -> float:
    """Padded pixels / all pixels over `batches`."""
    real = sum(int(b.widths.sum()) * b.images.shape[-2] for b in batches)
    return 1 - real / padded_pixels(batches)


class PeakMemory:
    """Peak memory while the block runs: CUDA max_memory_allocated on a GPU; on the CPU the
    process's peak resident set (VmHWM, reset through /proc/self/clear_refs where allowed,
    else ru_maxrss since the process started), in MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib, self.kind = device, 0.0, "cuda allocated"

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self.kind = "RSS peak"
            except OSError:
                self.kind = "RSS peak since start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        status = Path("/proc/self/status")
        if self.kind == "RSS peak" and status.is_file():
            kib = next(int(line.split()[1]) for line in status.read_text().splitlines()
                       if line.startswith("VmHWM:"))
        else:
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.mib = kib / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
