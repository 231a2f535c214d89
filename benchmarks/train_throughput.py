"""Training-step throughput of the recognizer presets on this machine's CPU (or a GPU).

Random line images of mixed widths (as bucketed batches have), batch 16, CTC decoder; the
first steps (kernel selection) are not timed. Writes its section of benchmarks/RESULTS.md:

    python benchmarks/train_throughput.py --presets small bp --heights 32 64 --steps 10
"""

from __future__ import annotations

import argparse
import time

import torch
from _results import RESULTS, header, write_section

from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import RecognizerConfig, build_recognizer
from htr_ssl.train.loop import autocast

HEADING = "## Recognizer training throughput"


def measure(preset: str, height: int, precision: str, steps: int, device: torch.device,
            batch: int = 16, n_chars: int = 80) -> float:
    """Training samples per second for one configuration."""
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig(EncoderConfig(preset, height), "ctc"), n_chars)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    width = height * 12  # a typical line is ~12x as wide as high
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        widths = torch.randint(width // 2, width + 1, (batch,), generator=g)
        images = torch.rand(batch, 1, height, width, generator=g).to(device)
        targets = torch.randint(1, n_chars + 1, (batch, 30), generator=g).to(device)
        lengths = torch.full((batch,), 30).to(device)
        with autocast(device, precision):
            loss, _ = model.loss(images, widths.to(device), targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "bp"])
    parser.add_argument("--heights", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for preset in args.presets:
        for height in args.heights:
            for precision in args.precisions:
                rate = measure(preset, height, precision, args.steps, device)
                print(f"{preset} h={height} {precision}: {rate:.1f} samples/s")
                rows.append(f"| {preset} | {height} | {precision} | {rate:.1f} |")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    text = (f"Batch 16, CTC, widths uniform in [6, 12] x height, AdamW step included; "
            f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} threads.\n\n"
            f"{header()}\n| preset | height | precision | samples/s |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    write_section(HEADING, text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
