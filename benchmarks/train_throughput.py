"""Training-step throughput of the recognizer presets on this machine's CPU (or a GPU): the
fused path against the plain one ("today's"), side by side in one run.

Random line images of mixed widths (as bucketed batches have), batch 16, CTC decoder, AdamW
step included; the first steps (kernel selection) are not timed. "fused" is what the trainer
runs now: the fused element-wise ops (htr_ssl.models.ops), fused AdamW and, on the CPU, freed
memory reused (trainer.reuse_memory); "plain" is the path before them
(`encoder.set_fused(False)`, torch's default AdamW, glibc's default allocator). The allocator
setting is process-wide, so each path trains in its own process; the two processes take steps
in turn (one step each, --steps times), so both see the same machine, and the median step is
reported. Writes its section of benchmarks/RESULTS.md:

    python benchmarks/train_throughput.py --presets small bp --heights 32 64 --steps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
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

HEADING = "## Recognizer training throughput"
PATHS = ("plain", "fused")
BATCH = 16


def serve(preset: str, height: int, precision: str, path: str, device: torch.device,
          n_chars: int = 80) -> None:
    """Worker: build the model, then answer the lines on stdin: "step" (one timed step: its
    seconds), "flops" (FLOPs of a step) or "threads"; end at EOF."""
    from _workloads import count_flops, plain_path

    from htr_ssl.inference.runtime import autocast
    from htr_ssl.models.encoders import EncoderConfig
    from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig, build_recognizer
    from htr_ssl.train.speed import adamw, reuse_freed_memory

    fused = path == "fused"
    if fused and device.type == "cpu":
        reuse_freed_memory()
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig(EncoderConfig(preset, height), DecoderConfig("ctc")),
                             n_chars)
    model.to(device).train()
    model.encoder.set_fused(fused)
    opt = (adamw(model.parameters(), device, lr=1e-4) if fused
           else torch.optim.AdamW(model.parameters(), lr=1e-4))
    width = height * 12  # a typical line is ~12x as wide as high
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        widths = torch.randint(width // 2, width + 1, (BATCH,), generator=g)
        images = torch.rand(BATCH, 1, height, width, generator=g).to(device)
        targets = torch.randint(1, n_chars + 1, (BATCH, 30), generator=g).to(device)
        lengths = torch.full((BATCH,), 30).to(device)
        with autocast(device, precision):
            loss, _ = model.loss(images, widths.to(device), targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):  # kernel selection, allocator
        step()
    for line in sys.stdin:
        if line.strip() == "step":
            start = now()
            step()
            answer: float = now() - start
        elif line.strip() == "flops":
            with plain_path(model):  # the images are always `width` wide: steps cost the same
                answer = count_flops(step)
        else:
            answer = torch.get_num_threads()
        print(json.dumps(answer), flush=True)


class Worker:
    """A `serve` process for one path."""

    def __init__(self, preset: str, height: int, precision: str, path: str, args) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", preset, str(height),
               precision, path, "--device", args.device, "--clock", args.clock]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def ask(self, what: str) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"training worker {self.proc.args} died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def compare(preset: str, height: int, precision: str, args) -> dict:
    """Median step time of each path, steps taken in turn, and the FLOPs of a step."""
    workers = {p: Worker(preset, height, precision, p, args) for p in PATHS}
    try:
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        for _ in range(args.steps):
            for path, worker in workers.items():
                times[path].append(worker.ask("step"))
        flops = workers["plain"].ask("flops")
        threads = int(workers["fused"].ask("threads"))
    finally:
        for worker in workers.values():
            worker.close()
    return {"seconds": {p: statistics.median(t) for p, t in times.items()}, "flops": flops,
            "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "bp"])
    parser.add_argument("--heights", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per path")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="see _results.set_clock")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    parser.add_argument("--serve", nargs=4, metavar=("PRESET", "HEIGHT", "PRECISION", "PATH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_clock(args.clock)
    device = torch.device(args.device)
    if args.serve:
        preset, height, precision, path = args.serve
        serve(preset, int(height), precision, path, device)
        return
    peaks = matmul_peaks(device)
    rows, threads = [], torch.get_num_threads()
    for preset in args.presets:
        for height in args.heights:
            for precision in args.precisions:
                r = compare(preset, height, precision, args)
                rate = {p: BATCH / r["seconds"][p] for p in PATHS}
                util = {p: mfu(r["flops"], r["seconds"][p], peaks[precision]) for p in PATHS}
                ratio = rate["fused"] / rate["plain"]
                threads = r["threads"]
                print(f"{preset} h={height} {precision}: {rate['plain']:.1f} -> "
                      f"{rate['fused']:.1f} samples/s (x{ratio:.2f})", flush=True)
                rows.append(f"| {preset} | {height} | {precision} | {rate['plain']:.1f} | "
                            f"{rate['fused']:.1f} | {ratio:.2f} | {util['plain']:.1%} / "
                            f"{util['fused']:.1%} |")
    text = (f"Batch {BATCH}, CTC, widths uniform in [6, 12] x height (padded to 12 x height), "
            f"AdamW step included; device: {device_name(device)}, torch {torch.__version__}, "
            f"{threads} thread(s); median of {args.steps} steps per path after 3, the two "
            "paths' processes taking steps in turn. Plain: the ops before fusion, torch's "
            "AdamW, glibc's default allocator; fused: the trainer's path now (fused ops, fused "
            "AdamW, freed memory reused). MFU: matmul, conv and LSTM FLOPs of the step "
            f"(forward and backward) over the matmul peak of the precision. {clock_note()}\n\n"
            f"{header(device, peaks)}\n"
            "| preset | height | precision | plain samples/s | fused samples/s | speed-up | "
            "MFU (plain / fused) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    write_section(HEADING, text, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
