"""The benchmark scripts still run (tiny settings, results to a temporary file), so the
figures in benchmarks/RESULTS.md can always be reproduced with the commands they name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}


@pytest.mark.parametrize("script, args, heading, rows", [
    ("read_throughput.py", ["--lines", "12", "--height", "32", "--batch", "4", "--window", "8",
                            "--rounds", "1"],
     "## Reading throughput", 8),
    ("throughput.py", ["--presets", "small", "--height", "32", "--batch", "2", "--steps", "1",
                       "--warmup", "1", "--lines", "12", "--workloads", "greedy",
                       "pretext:rotation", "--skip-loading"],
     "## Throughput: optimized vs baseline (small, 32 px)", 2),
    ("train_throughput.py", ["--presets", "small", "--heights", "32", "--precisions", "bf16",
                             "--steps", "1"],
     "## Recognizer training throughput", 1),
    ("profile_encoder.py", ["--height", "32", "--width", "64", "--batch", "2", "--iters", "1"],
     "## Profile: `small` reading, 32 px, plain vs fused", 9),
])
def test_benchmark_writes_its_section(tmp_path, script, args, heading, rows):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--out", str(out)],
                          cwd=tmp_path, env={**ENV, "TMPDIR": str(tmp_path)},  # generated lines
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert heading in text and "- command: `python " in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == rows + 1  # header + one row per measurement
