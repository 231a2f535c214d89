"""Time the synthetic generator (render + PNG + ascii writing) with 1 and 2 worker processes.

Writes its own section of benchmarks/RESULTS.md, replacing an earlier one, so the numbers in
the repository always come from the last run of this script:

    python benchmarks/synthetic_throughput.py --lines 2000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

from _results import RESULTS, header, write_section

from htr_ssl.data.synthetic import GenerateConfig, generate

HEADING = "## Synthetic generator throughput"
LINES_PER_FORM = 8


def measure(n_lines: int, workers: int, height: int) -> dict:
    """Generate about `n_lines` lines into a temporary folder and time it end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerateConfig(out_dir=tmp, n_writers=math.ceil(n_lines / LINES_PER_FORM),
                             forms_per_writer=1, lines_per_form=LINES_PER_FORM, height=height,
                             workers=workers, seed=0)
        start = time.perf_counter()
        stats = generate(cfg)
        seconds = time.perf_counter() - start
    return {"workers": workers, "lines": stats["samples"], "words": stats["words"],
            "seconds": seconds, "lines_per_s": stats["samples"] / seconds}


def section(results: list[dict], height: int) -> str:
    """The markdown body for RESULTS.md."""
    rows = "\n".join(f"| {r['workers']} | {r['lines']} | {r['words']} | {r['seconds']:.2f} | "
                     f"{r['lines_per_s']:.1f} |" for r in results)
    return (
        f"Lines rendered and written as IAM-layout PNGs (line and word images, ascii files), "
        f"{height} px line height; wall-clock times. MFU does not apply (rendering and PNG "
        "encoding, no network), the matmul peaks below only name the machine. With fewer CPUs "
        f"available to the process than workers, the workers share them.\n\n{header()}\n"
        "| workers | lines | words | seconds | lines/s |\n|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--height", type=int, default=80)
    args = parser.parse_args()
    results = []
    for workers in (1, 2):
        r = measure(args.lines, workers, args.height)
        print(f"workers={workers}: {r['lines']} lines in {r['seconds']:.2f} s = "
              f"{r['lines_per_s']:.1f} lines/s")
        results.append(r)
    write_section(HEADING, section(results, args.height))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
