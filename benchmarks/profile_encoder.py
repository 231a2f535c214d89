"""Where the time goes: torch.profiler over the encoder, plain path against fused, by kind of op.

Reading (default): the encoder alone, no gradients, as in issue 17's profile (bf16 autocast,
batch 16, 64 x 768 lines, BiLSTM included). --train: a CTC training step of the recognizer
(forward and backward, no optimizer). Self CPU time is grouped into convolutions, LSTM, the
element-wise passes the fusion is about (ReLU, pooling, masking) and the rest; the paths are
timed side by side (interleaved, median) for the rate and MFU. Writes its section of
benchmarks/RESULTS.md (or --out):

    python benchmarks/profile_encoder.py --preset small --height 64
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import torch
from _results import (
    CLOCKS,
    RESULTS,
    clock_note,
    device_name,
    header,
    matmul_peaks,
    mfu,
    now,
    set_clock,
    write_section,
)
from _workloads import CHARS, count_flops, plain_path
from torch.profiler import ProfilerActivity, profile

from htr_ssl.inference.runtime import autocast
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer

PATHS = ("plain", "fused")
# op -> kind; "masking" is the padding masks' multiplications and fills (in training, the
# dropout's multiplications too)
KINDS = {
    "convolution": ("aten::mkldnn_convolution", "mkldnn::_convolution_pointwise",
                    "aten::convolution_backward", "aten::_convolution"),
    "LSTM": ("aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward"),
    "ReLU": ("aten::relu", "aten::relu_", "aten::clamp_min", "aten::clamp_min_",
             "aten::threshold_backward"),
    "pooling": ("aten::maximum", "aten::max_pool2d_with_indices",
                "aten::max_pool2d_with_indices_backward", "aten::amax", "aten::max"),
    "masking": ("aten::mul", "aten::fill_", "aten::masked_fill_", "aten::zero_"),
}
ELEMENTWISE = ("ReLU", "pooling", "masking")


def kind(op: str) -> str:
    return next((k for k, ops in KINDS.items() if op in ops), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--train", action="store_true", help="a training step, not reading")
    parser.add_argument("--iters", type=int, default=5, help="profiled and timed iterations")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="see _results.set_clock")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    set_clock(args.clock)
    device = torch.device("cpu")
    peaks = matmul_peaks(device)
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig(EncoderConfig(args.preset, args.height),
                                              DecoderConfig("ctc")),
                             len(CHARS)).train(args.train)
    images = torch.rand(args.batch, 1, args.height, args.width)
    widths = torch.full((args.batch,), args.width)
    widths[::2] = args.width * 15 // 16  # some padding, as in width-sorted batches
    targets = torch.randint(1, len(CHARS) + 1, (args.batch, 30))
    target_lengths = torch.full((args.batch,), 30)

    def run() -> None:
        if args.train:
            with autocast(device, args.precision):
                loss, _ = model.loss(images, widths, targets, target_lengths)
            model.zero_grad(set_to_none=True)
            loss.backward()
        else:
            with torch.no_grad(), autocast(device, args.precision):
                model.encoder(images, widths)

    with plain_path(model):
        flops = count_flops(run)
    seconds: dict[str, list[float]] = {p: [] for p in PATHS}
    shares, tops = {}, {}
    for path in PATHS:
        model.encoder.set_fused(path == "fused")
        run()
        run()  # kernel selection, weight packing
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.iters):
                run()
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        total = sum(e.self_cpu_time_total for e in events)
        by_kind: dict[str, float] = defaultdict(float)
        for e in events:
            by_kind[kind(e.key)] += e.self_cpu_time_total / total
        shares[path] = by_kind
        tops[path] = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
        tops[path] = [(e.key, e.self_cpu_time_total / total) for e in tops[path]]
    for _ in range(args.iters):  # the rate, without the profiler, paths interleaved
        for path in PATHS:
            model.encoder.set_fused(path == "fused")
            start = now()
            run()
            seconds[path].append(now() - start)
    model.encoder.set_fused(True)
    t = {p: statistics.median(seconds[p]) for p in PATHS}
    rows = []
    for k in [*KINDS, "other"]:
        rows.append(f"| {k} | {shares['plain'][k]:.1%} | {shares['fused'][k]:.1%} |")
    ew = {p: sum(shares[p][k] for k in ELEMENTWISE) for p in PATHS}
    rows.append(f"| **element-wise (ReLU + pooling + masking)** | **{ew['plain']:.1%}** | "
                f"**{ew['fused']:.1%}** |")
    rows.append(f"| ms per batch (median of {args.iters}, unprofiled) | {t['plain'] * 1e3:.1f} "
                f"| {t['fused'] * 1e3:.1f} |")
    util = {p: mfu(flops, t[p], peaks[args.precision]) for p in PATHS}
    rows.append(f"| MFU ({args.precision} peak) | {util['plain']:.1%} | {util['fused']:.1%} |")
    top = "; ".join(f"{p}: " + ", ".join(f"`{n}` {s:.1%}" for n, s in tops[p]) for p in PATHS)
    what = "training step (forward + backward)" if args.train else "reading (no gradients)"
    for p in PATHS:
        print(f"{p}: {t[p] * 1e3:.1f} ms, element-wise {ew[p]:.1%}")
    text = (f"`{args.preset}`, {what}, {args.precision}, batch {args.batch} of "
            f"{args.height} x {args.width} lines (every other one {args.width * 15 // 16} wide); "
            f"{device_name(device)}, {torch.get_num_threads()} thread(s). Self CPU time by kind "
            f"over {args.iters} profiled iterations per path; {flops / 1e9:.1f} GFLOP per "
            f"batch. Fused / plain: {t['plain'] / t['fused']:.2f}x. {clock_note()} Top ops: "
            f"{top}.\n\n"
            f"{header(device, peaks)}\n"
            "| kind of op | plain | fused |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    mode = "training step" if args.train else "reading"
    write_section(f"## Profile: `{args.preset}` {mode}, {args.height} px, plain vs fused",
                  text, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
