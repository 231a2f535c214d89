"""Shared helpers for benchmarks: the machine description (CPU model, AMX, measured matmul
peaks) that heads every RESULTS.md section, and writing the sections.

The same command gives very different figures on an AMX Xeon, an AVX-512 EPYC or a GPU, so
every section names the machine and its measured bf16 and fp32 matmul peaks, and states speed
as MFU (achieved FLOP/s over that peak) next to the rates: figures from different machines can
then be compared."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
CLOCKS = ("wall", "cpu")
_clock = {"kind": "wall"}


def set_clock(kind: str) -> None:
    """What `now()` measures: "wall" time (the default), or "cpu": this process's CPU time,
    which leaves out the time the scheduler gives other jobs on a shared core (with one thread
    it equals wall time on an idle machine; with more threads it adds theirs up)."""
    if kind not in CLOCKS:
        raise ValueError(f"clock {kind!r}; use one of {CLOCKS}")
    _clock["kind"] = kind


def now() -> float:
    """Seconds on the chosen clock (see set_clock)."""
    return time.process_time() if _clock["kind"] == "cpu" else time.perf_counter()


def clock_note() -> str:
    """How the section's times were taken, for its text."""
    if _clock["kind"] == "cpu":
        return ("Times are the process's CPU time (--clock cpu: the core was shared with other "
                "jobs; with one thread this is the wall time of an idle machine).")
    return "Times are wall-clock."


def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if path.is_file() else ""


def cpu_name() -> str:
    """The CPU model and the vector ISA torch dispatches to (e.g. "AMD EPYC, AVX512")."""
    names = re.findall(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.M)
    model = names[0].strip() if names else (platform.processor() or platform.machine())
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        isa = "unknown ISA"
    return f"{model}, {isa}"


def has_amx() -> bool:
    """Whether the CPU has AMX bf16 tiles (Intel Sapphire Rapids and later): oneDNN's bf16
    matmuls and convolutions are then several times faster than with AVX-512 bf16 alone."""
    return bool(re.search(r"^flags\s*:.*\bamx_bf16\b", _cpuinfo(), re.M))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, reps: int = 10) -> float:
    """Measured FLOP/s of an n x n matmul: the machine's practical peak for MFU. The fastest
    of `reps` timings on the chosen clock (see set_clock), so a moment of contention cannot
    lower the peak (and inflate MFU)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        start = now()
        a @ b
        _sync(device)
        best = min(best, now() - start)
    return 2 * n**3 / best


def matmul_peaks(device: torch.device) -> dict[str, float]:
    """{"fp32": FLOP/s, "bf16": FLOP/s} with this process's thread count (1024 x 1024 on a
    CPU, 8192 x 8192 on a GPU)."""
    n = 8192 if device.type == "cuda" else 1024
    return {p: matmul_peak(device, d, n) for p, d in (("fp32", torch.float32),
                                                      ("bf16", torch.bfloat16))}


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model with its ISA and whether it has AMX."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, AMX {'yes' if has_amx() else 'no'}"


def mfu(flops: float, seconds: float, peak: float) -> float:
    """Model FLOP utilization: achieved FLOP/s over the measured matmul peak."""
    return flops / seconds / peak


def header(device: torch.device | None = None, peaks: dict[str, float] | None = None,
           command: str | None = None) -> str:
    """Date, machine, threads, matmul peaks and command lines that head every section; the
    peaks are measured here unless given."""
    device = device or torch.device("cpu")
    peaks = peaks or matmul_peaks(device)
    command = command or "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"- date: {dt.datetime.now().isoformat(timespec='seconds')}\n"
            f"- machine: {device_name(device)}; {platform.platform()}, "
            f"os.cpu_count()={os.cpu_count()}, CPUs available to the process: {cpus}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)\n"
            f"- measured matmul peak ({'8192' if device.type == 'cuda' else '1024'}^2, best of "
            f"10): bf16 {peaks['bf16'] / 1e12:.3f} TFLOP/s, fp32 {peaks['fp32'] / 1e12:.3f} "
            "TFLOP/s (MFU below is against the peak of the run's precision)\n"
            f"- clock: {_clock['kind']}\n"
            f"- command: `{command}`\n")


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section under `heading` in `path` (or append it), leaving the rest alone."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    body = f"{heading}\n\n{text.rstrip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: body + "\n", old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + body)
    path.write_text(new, encoding="utf-8")
