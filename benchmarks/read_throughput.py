"""End-to-end reading speed: what `htr-ssl-predict` does to a folder of line images (decode,
resize, batch, network, greedy CTC decoding), in lines/s and MFU, for each way of batching,
each precision and each path. "File order" batches consecutive images (window = batch size:
what the command did before it sorted by width); "width-sorted" sorts each window of --window
images by width. "fused" is the CPU reading path of htr_ssl.models.cpu_inference (the default),
"plain" the blocks' own ops (`encoder.set_fused(False)`, the path before it), measured side
by side: every case once per round, --rounds rounds, the median reported. A freshly
initialized `small` recognizer stands in for a trained one: reading speed does not depend on
the weights. Writes its section of benchmarks/RESULTS.md (or --out):

    python benchmarks/read_throughput.py --lines 512 --height 64
"""

from __future__ import annotations

import argparse
import statistics
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
from _workloads import CHARS, _recognizer, count_flops, plain_path
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
    start = now()
    n = sum(1 for _ in read_in_input_order(transcriber, samples, height, batch, workers, window))
    seconds = now() - start
    if n != len(samples):
        raise RuntimeError(f"read {n} of {len(samples)} images")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=512)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="times each case is read")
    parser.add_argument("--data", default=None, help="IAM-layout root whose line images to read")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="see _results.set_clock")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    set_clock(args.clock)
    device = torch.device(args.device)
    peaks = matmul_peaks(device)
    samples = line_samples(args.data, args.lines)
    model = _recognizer("small", args.height, device, False).eval()
    windows = {"file order": args.batch, "width-sorted": args.window}
    cases = [("file order", "fp32", "fused", 0), ("file order", "bf16", "fused", 0),
             ("width-sorted", "fp32", "plain", 0), ("width-sorted", "fp32", "fused", 0),
             ("width-sorted", "bf16", "plain", 0), ("width-sorted", "bf16", "fused", 0),
             ("width-sorted", "bf16", "fused", 1), ("width-sorted", "bf16", "fused", 2)]
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            order, precision, path, workers = case
            model.encoder.set_fused(path == "fused")
            transcriber = Transcriber(model, Alphabet(CHARS), DecodeConfig(), precision)
            times[case].append(read_all(transcriber, samples, args.height, args.batch, workers,
                                        windows[order]))
    model.encoder.set_fused(True)
    # FLOPs of reading every line once, per batching (padding differs); counted on the plain
    # path, whose arithmetic the fused one repeats
    flops = {}
    for order, window in windows.items():
        transcriber = Transcriber(model, Alphabet(CHARS), DecodeConfig(), "fp32")
        with plain_path(model):
            flops[order] = count_flops(lambda t=transcriber, w=window: read_all(
                t, samples, args.height, args.batch, 0, w))
    rows, rates = [], {}
    for case in cases:
        order, precision, path, workers = case
        seconds = statistics.median(times[case])
        rates[case] = len(samples) / seconds
        util = mfu(flops[order], seconds, peaks[precision])
        print(f"{order}, {precision}, {path}, {workers} workers: {rates[case]:.1f} lines/s, "
              f"MFU {util:.1%}", flush=True)
        rows.append(f"| {order} | {precision} | {path} | {workers} | {seconds:.2f} | "
                    f"{rates[case]:.1f} | {util:.1%} |")
    speedup = {p: rates[("width-sorted", p, "fused", 0)] / rates[("width-sorted", p, "plain", 0)]
               for p in ("bf16", "fp32")}
    ratios = ", ".join(f"{p} {r:.2f}x" for p, r in speedup.items())
    per_line = flops["width-sorted"] / len(samples) / 1e9
    text = (f"Device: {device_name(device)}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; {len(samples)} line images, `small` at "
            f"{args.height} px, batch {args.batch}, greedy CTC; width-sorted windows of "
            f"{args.window} images; median of {args.rounds} rounds, the cases interleaved. "
            "Times exclude start-up (imports, checkpoint). MFU: the network's matmul, conv and "
            f"LSTM FLOPs ({per_line:.2f} GFLOP per line width-sorted, padding included) per "
            "second of the whole read (decoding, resizing and batching included) over the "
            f"matmul peak of the precision. Fused over plain, width-sorted: {ratios}. "
            f"{clock_note()} With decoding workers the CPU clock leaves their time out.\n\n"
            f"{header(device, peaks)}\n"
            "| batching | precision | path | decoding workers | seconds | lines/s | MFU |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    write_section(HEADING, text, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
