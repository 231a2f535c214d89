"""Shared helpers for benchmarks: the machine description and RESULTS.md sections."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_name() -> str:
    """The CPU model and the vector ISA torch dispatches to (e.g. "AMD EPYC, AVX512"): the
    same command gives different figures on AMX, AVX-512 and AVX2 machines, so say which."""
    cpuinfo = Path("/proc/cpuinfo")
    model = platform.processor() or platform.machine()
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = names[0].strip() if names else model
    try:
        import torch

        isa = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        isa = "unknown ISA"
    return f"{model}, {isa}"


def header(command: str | None = None) -> str:
    """Date, machine and command lines that head every section."""
    command = command or "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    return (f"- date: {dt.datetime.now().isoformat(timespec='seconds')}\n"
            f"- machine: {platform.platform()}, {cpu_name()}, "
            f"os.cpu_count()={os.cpu_count()}, Python {platform.python_version()}\n"
            f"- command: `{command}`\n")


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section under `heading` in `path` (or append it), leaving the rest alone."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    body = f"{heading}\n\n{text.rstrip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: body + "\n", old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + body)
    path.write_text(new, encoding="utf-8")
