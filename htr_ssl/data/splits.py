"""Official split files, the writer-disjoint fallback, and nested label fractions.

Every choice here is made by ranking ids with a seeded SHA-1, never with Python's `hash()` or
a global RNG, so the same seed selects the same ids on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def stable_rank(key: str, seed: int) -> str:
    """A machine-independent sort key for `key` under `seed`."""
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def read_id_list(path: Path) -> list[str]:
    """One id per line (blank lines and `#` comments ignored), e.g. Aachen `*.uttlist` files."""
    out = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def writer_disjoint_split(
    samples: Sequence[Sample], val: float = 0.1, test: float = 0.2, seed: int = 0
) -> list[Sample]:
    """Assign train/val/test by writer so no writer appears in two splits.

    Writers are shuffled by `stable_rank` and filled into test, then val, until each holds
    its share of samples; the rest is train. Samples without a writer count as their own writer.
    """
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ValueError(f"split fractions val={val} test={test} must be in [0, 1) and sum < 1")
    by_writer: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_writer[s.writer or s.id].append(s)
    writers = sorted(by_writer, key=lambda w: stable_rank(w, seed))
    total = len(samples)
    assignment: dict[str, str] = {}
    counts = {"test": 0, "val": 0}
    for w in writers:
        for name, share in (("test", test), ("val", val)):
            if counts[name] < share * total and len(by_writer[w]) > 0:
                assignment[w] = name
                counts[name] += len(by_writer[w])
                break
        else:
            assignment[w] = "train"
    return [replace(s, split=assignment[s.writer or s.id]) for s in samples]


def select(samples: Iterable[Sample], split: str) -> list[Sample]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return [s for s in samples if s.split == split]


def label_subset(samples: Sequence[Sample], amount: float | int, seed: int = 0) -> list[Sample]:
    """A deterministic subset: a fraction in (0, 1] or an absolute number of samples.

    Subsets are nested: for the same seed, the 5 % subset is a prefix of the 10 % one, because
    both take the first k ids of one seeded ranking.
    """
    n = len(samples)
    if isinstance(amount, float) or amount == 1:
        if not 0 < amount <= 1:
            raise ValueError(f"label fraction {amount} must be in (0, 1]; or give a line count")
        k = max(1, round(amount * n)) if n else 0
    else:
        if amount < 1:
            raise ValueError(f"label count {amount} must be >= 1")
        if amount > n:
            raise ValueError(f"asked for {amount} labeled samples but only {n} are available")
        k = int(amount)
    ranked = sorted(samples, key=lambda s: stable_rank(s.id, seed))
    return ranked[:k]


def write_ids(samples: Iterable[Sample], path: Path) -> None:
    """Record a selection as `id<TAB>split<TAB>writer` lines so a run can be audited/replayed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{s.id}\t{s.split}\t{s.writer}" for s in samples]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def drop_empty(samples: Sequence[Sample]) -> list[Sample]:
    """Remove samples whose transcription is empty or only whitespace, logging the count."""
    kept = [s for s in samples if s.text.strip()]
    if len(kept) < len(samples):
        log.warning("dropped %d samples with empty transcriptions", len(samples) - len(kept))
    return kept
