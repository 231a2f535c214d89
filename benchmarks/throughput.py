"""Throughput, optimized against a plain baseline measured in the same run, so the speed-up is
a ratio on one machine.

For each preset: one training step of every registered pretext, a CTC fine-tuning step, and
inference (greedy best path; flashlight beam search), in lines/s. Optimized = bf16 autocast +
width-bucketed batches (+ torch.compile with --compile); baseline = fp32 + batches in random
order (more padding). Batches are random pixels with the widths of real lines (--data, else
the synthetic lines in datasets/synthetic, else freshly generated ones), built before timing,
so the step alone is timed. Also: MFU (FLOPs from torch.utils.flop_counter over the measured
matmul peak of this machine), peak memory, and data loading alone (decode + augmentation +
collate: no workers / unbucketed vs --workers persistent workers / bucketed). Writes its
section of benchmarks/RESULTS.md (or --out):

    python benchmarks/throughput.py --presets small resnet --steps 20
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from _results import (
    CLOCKS,
    RESULTS,
    clock_note,
    device_name,
    header,
    matmul_peaks,
    set_clock,
    write_section,
)
from _workloads import (
    PeakMemory,
    finetune_step,
    flops_per_pixel,
    infer_step,
    make_batches,
    pad_share,
    padded_pixels,
    pretext_step,
    timed,
)

from htr_ssl.data.pipeline import DataConfig, make_loader
from htr_ssl.data.readers import read_dataset
from htr_ssl.data.transforms import AugmentConfig
from htr_ssl.pretext.registry import PRETEXTS
from htr_ssl.train.speed import pad_ratio

HEADING = "## Throughput: optimized vs baseline"
MODES = {"baseline": ("fp32", False), "optimized": ("bf16", True)}  # precision, bucketing


def line_samples(data: str | None, lines: int) -> list:
    """IAM-layout line samples: --data, datasets/synthetic, or `lines` generated ones."""
    root = Path(data or "datasets/synthetic")
    if data is None and not (root / "ascii" / "lines.txt").is_file():
        from htr_ssl.data.synthetic import GenerateConfig, generate

        root = Path(tempfile.mkdtemp(prefix="htr_ssl_bench_"))
        # at least 4 writers: the generator keeps some for validation and test
        generate(GenerateConfig(out_dir=str(root), n_writers=max(4, math.ceil(lines / 8)),
                                forms_per_writer=1, lines_per_form=8, overwrite=True))
    samples = read_dataset("iam", root, unlabeled=True, granularity="lines")
    return samples[:lines]


def workloads(pretexts: list[str]) -> list[str]:
    return [f"pretext:{p}" for p in pretexts] + ["finetune", "greedy", "beam"]


def build(workload: str, preset: str, height: int, device: torch.device, precision: str,
          compile_: bool, beam: int):
    """(step, views, counts FLOPs) for one workload."""
    if workload.startswith("pretext:"):
        step, views = pretext_step(workload[8:], preset, height, device, precision, compile_)
        return step, views, True
    if workload == "finetune":
        return finetune_step(preset, height, device, precision, compile_), 1, True
    size = 1 if workload == "greedy" else beam
    return infer_step(preset, height, device, precision, size, compile_), 1, workload == "greedy"


def measure(workload: str, preset: str, mode: str, args, aspects: list[float],
            device: torch.device, peaks: dict[str, float]) -> dict:
    precision, bucket = MODES[mode]
    step, views, counted = build(workload, preset, args.height, device, precision,
                                 args.compile and mode == "optimized", args.beam)
    batches = make_batches(aspects, args.height, args.batch, args.warmup + args.steps, bucket,
                           views)
    with PeakMemory(device) as mem:
        seconds = timed(step, batches, args.warmup, device)
    mfu = None
    if counted:
        flops = flops_per_pixel(step, batches[-1]) * padded_pixels(batches[args.warmup:])
        mfu = flops / seconds / peaks[precision]
    return {"lines_per_s": args.steps * args.batch / seconds, "mfu": mfu, "mem": mem.mib,
            "mem_kind": mem.kind, "pad": pad_share(batches[args.warmup:])}


def loading(samples: list, args, workers: int, bucket: bool) -> tuple[float, float]:
    """(lines/s, pad ratio) of the training loader (htr augmentation), second epoch timed, so
    persistent workers are already up."""
    cfg = DataConfig(height=args.height, batch_size=args.batch, num_workers=workers,
                     bucket=bucket, augment=AugmentConfig("htr", 0.5), crop_cache=None)
    loader = make_loader(samples, None, cfg, train=True)
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        start, lines, pads = time.perf_counter(), 0, []
        for batch in loader:
            lines += len(batch)
            pads.append(pad_ratio(batch))
    return lines / (time.perf_counter() - start), sum(pads) / len(pads)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "resnet"])
    parser.add_argument("--pretexts", nargs="+", default=sorted(PRETEXTS))
    parser.add_argument("--workloads", nargs="+", default=None,
                        help="subset of pretext:NAME, finetune, greedy, beam (default: all)")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="torch.compile when optimized")
    parser.add_argument("--workers", type=int, default=2, help="loader workers when optimized")
    parser.add_argument("--data", default=None, help="IAM-layout root whose line widths to use")
    parser.add_argument("--lines", type=int, default=512, help="lines to read for widths/loading")
    parser.add_argument("--skip-loading", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="see _results.set_clock")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    set_clock(args.clock)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    samples = line_samples(args.data, args.lines)
    aspects = [a for a in (s.aspect() for s in samples) if a > 0]
    peaks = matmul_peaks(device)
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e12:.3f} TFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e12:.3f} TFLOP/s")
    rows = []
    for preset in args.presets:
        for workload in args.workloads or workloads(args.pretexts):
            r = {m: measure(workload, preset, m, args, aspects, device, peaks) for m in MODES}
            base, opt = r["baseline"], r["optimized"]
            ratio = opt["lines_per_s"] / base["lines_per_s"]
            print(f"{preset} {workload}: {base['lines_per_s']:.1f} -> {opt['lines_per_s']:.1f} "
                  f"lines/s (x{ratio:.2f})", flush=True)
            rows.append(
                f"| {preset} | {workload} | {base['lines_per_s']:.1f} | {opt['lines_per_s']:.1f} "
                f"| {ratio:.2f} | {base['pad']:.2f} / {opt['pad']:.2f} "
                f"| {_fmt(base['mfu'], '.1%')} / {_fmt(opt['mfu'], '.1%')} "
                f"| {base['mem']:.0f} / {opt['mem']:.0f} |")
    mem_kind = "CUDA max allocated" if device.type == "cuda" else "process RSS peak"
    text = (
        f"Device: {device_name(device)}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; height {args.height}, batch {args.batch}, "
        f"{args.steps} timed steps after {args.warmup}; widths of {len(aspects)} dataset lines; "
        f"beam {args.beam}{'; torch.compile on' if args.compile else ''}. Baseline: fp32, "
        "random batches; optimized: bf16 autocast, width-bucketed batches (both on the fused "
        "path with fused AdamW; glibc's default allocator, so that the memory column means "
        "something: trainer.reuse_memory would keep every workload's peak). Matmul peak: "
        f"fp32 {peaks['fp32'] / 1e12:.3f}, bf16 {peaks['bf16'] / 1e12:.3f} TFLOP/s. MFU "
        "counts matmul, conv and LSTM FLOPs (padding included) against that peak of the same "
        f"precision; memory is {mem_kind} in MiB. Beam decoding runs on the CPU (flashlight) "
        f"with an untrained model's near-uniform outputs: a slow case. {clock_note()} Data "
        "loading below is timed on the wall clock (its workers are other processes).\n\n"
        f"{header(device, peaks)}\n"
        "| preset | workload | baseline lines/s | optimized lines/s | speed-up | pad ratio "
        "(base / opt) | MFU (base / opt) | peak MiB (base / opt) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    if not args.skip_loading:
        base = loading(samples, args, 0, False)
        opt = loading(samples, args, args.workers, True)
        print(f"loading: {base[0]:.1f} -> {opt[0]:.1f} lines/s")
        text += (
            f"\nData loading alone ({len(samples)} lines: decode, `htr` augmentation p=0.5, "
            "resize, collate; second epoch timed):\n\n"
            "| loader | lines/s | pad ratio |\n|---|---|---|\n"
            f"| 0 workers, unbucketed | {base[0]:.1f} | {base[1]:.2f} |\n"
            f"| {args.workers} persistent worker(s), bucketed | {opt[0]:.1f} | {opt[1]:.2f} |\n"
            f"\nSpeed-up: {opt[0] / base[0]:.2f}x\n")
    write_section(f"{HEADING} ({', '.join(args.presets)}, {args.height} px)", text, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
