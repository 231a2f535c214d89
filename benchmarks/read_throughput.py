"""End-to-end reading speed: what `htr-ssl-predict` does to a folder of line images (decode,
resize, batch, network, greedy CTC decoding), in lines/s, for each way of batching and each
precision. "File order" batches consecutive images (window = batch size: what the command did
before it sorted by width); "width-sorted" sorts each window of --window images by width.
A freshly initialized `small` recognizer stands in for a trained one: reading speed does not
depend on the weights. Writes its section of benchmarks/RESULTS.md (or --out):

    python benchmarks/read_throughput.py --lines 512 --height 64
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _results import RESULTS, cpu_name, header, write_section
from _workloads import CHARS, _recognizer
from throughput import line_samples

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.sample import Sample
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber, read_in_input_order

HEADING = "## Reading throughput (htr-ssl-predict, end to end)"


def read_all(transcriber: Transcriber, samples: list[Sample], height: int, batch: int,
             workers: int, window: int) -> float:
    """Seconds to read every sample (the first batch's one-off kernel set-up excluded by a
    warm-up read of one batch before)."""
    list(read_in_input_order(transcriber, samples[:batch], height, batch, 0, batch))
    start = time.perf_counter()
    n = sum(1 for _ in read_in_input_order(transcriber, samples, height, batch, workers, window))
    seconds = time.perf_counter() - start
    if n != len(samples):
        raise RuntimeError(f"read {n} of {len(samples)} images")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=512)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--data", default=None, help="IAM-layout root whose line images to read")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    samples = line_samples(args.data, args.lines)
    model = _recognizer("small", args.height, torch.device(args.device), False).eval()
    cases = [("file order", "fp32", 0, args.batch), ("file order", "bf16", 0, args.batch),
             ("width-sorted", "fp32", 0, args.window), ("width-sorted", "bf16", 0, args.window),
             ("width-sorted", "bf16", 1, args.window), ("width-sorted", "bf16", 2, args.window)]
    rows = []
    for order, precision, workers, window in cases:
        transcriber = Transcriber(model, Alphabet(CHARS), DecodeConfig(), precision)
        seconds = read_all(transcriber, samples, args.height, args.batch, workers, window)
        rate = len(samples) / seconds
        print(f"{order}, {precision}, {workers} workers: {rate:.1f} lines/s", flush=True)
        rows.append(f"| {order} | {precision} | {workers} | {seconds:.2f} | {rate:.1f} |")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    text = (f"Device: {device}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"{len(samples)} line images, `small` at {args.height} px, batch {args.batch}, "
            f"greedy CTC; width-sorted windows of {args.window} images. Times exclude start-up "
            "(imports, checkpoint).\n\n"
            f"{header()}\n"
            "| batching | precision | decoding workers | seconds | lines/s |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    write_section(HEADING, text, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
