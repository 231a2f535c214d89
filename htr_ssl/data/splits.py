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


HOW_TO_CHOOSE = ("To choose the split: set data.val_frac / data.test_frac, give a TSV manifest a "
                 "split column (data=tsv: path<TAB>text<TAB>writer<TAB>split), or give "
                 "data.split_file=FILE with lines 'id<TAB>train|val|test' (the splits.tsv every "
                 "run writes is one)")


def fallback_split(samples: Sequence[Sample], val: float = 0.1, test: float = 0.2,
                   seed: int = 0, where: str = "the dataset") -> tuple[list[Sample], bool]:
    """The split of a dataset that has none, and whether it is writer-disjoint.

    Writer-disjoint when the writers (documents) allow it: every split asked for gets lines,
    train too, and none gets more than twice its share. Otherwise (two collections, one page)
    the lines are split instead, and a warning says what happened and how to choose.
    """
    out = writer_disjoint_split(samples, val, test, seed)
    counts = _counts(out)
    total = len(samples)
    if counts["train"] and all(
            not frac or 0 < counts[name] <= 2 * frac * total + 1
            for name, frac in (("val", val), ("test", test))):
        return out, True
    lines = line_split(samples, val, test, seed)
    writers = sorted({s.writer or s.id for s in samples})
    shown = ", ".join(writers[:3]) + (", ..." if len(writers) > 3 else "")
    log.warning(
        "%s has %d writers/documents (%s): too few for a writer-disjoint split with "
        "data.val_frac=%g and data.test_frac=%g, which would give %s. The lines were split "
        "instead: %s, so writers are shared between splits (test scores are optimistic). %s",
        where, len(writers), shown, val, test, _shown(counts), _shown(_counts(lines)),
        HOW_TO_CHOOSE)
    return lines, False


def line_split(samples: Sequence[Sample], val: float = 0.1, test: float = 0.2, seed: int = 0
               ) -> list[Sample]:
    """Assign train/val/test by line (seeded SHA-1 ranking of ids), writers ignored. A split
    with a share above 0 gets at least one line as long as train keeps one."""
    n = len(samples)
    n_test, n_val = round(test * n), round(val * n)
    if test > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    if val > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    while n and n_test + n_val >= n:
        if n_val:
            n_val -= 1
        else:
            n_test -= 1
    ranked = sorted(range(n), key=lambda i: stable_rank(samples[i].id, seed))
    split = {i: "test" for i in ranked[:n_test]}
    split.update({i: "val" for i in ranked[n_test:n_test + n_val]})
    return [replace(s, split=split.get(i, "train")) for i, s in enumerate(samples)]


def apply_split_file(samples: Sequence[Sample], path: Path) -> list[Sample]:
    """Each sample's split as `path` lists it (`id<TAB>train|val|test[<TAB>...]` lines, the
    splits.tsv a run writes); samples it does not list are left out with a count."""
    from htr_ssl.data.readers.common import data_rows, format_error  # readers import this

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.split_file={path} does not exist; give a file of "
                                "'id<TAB>train|val|test' lines (e.g. a run's splits.tsv)")
    given: dict[str, str] = {}
    for lineno, row in data_rows(path):
        fields = row.split("\t")
        split = fields[1].strip() if len(fields) > 1 else ""
        if split not in SPLITS:
            raise format_error(path, lineno, "expected id<TAB>train|val|test", row,
                               fix="give each id its split (train, val or test)")
        given[fields[0].strip()] = split
    out = [replace(s, split=given[s.id]) for s in samples if s.id in given]
    if len(out) < len(samples):
        left = [s.id for s in samples if s.id not in given]
        log.warning("data.split_file=%s does not list %d samples (e.g. %s): left out", path,
                    len(left), ", ".join(left[:3]))
    unknown = len(given) - len(out)
    if unknown > 0:
        log.warning("data.split_file=%s lists %d ids that the dataset does not have", path,
                    unknown)
    return out


def _counts(samples: Iterable[Sample]) -> dict[str, int]:
    counts = dict.fromkeys(SPLITS, 0)
    for s in samples:
        counts[s.split] = counts.get(s.split, 0) + 1
    return counts


def _shown(counts: dict[str, int]) -> str:
    return " / ".join(f"{counts[name]} {name}" for name in SPLITS)


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
        empty = [s.id for s in samples if not s.text.strip()]
        log.warning("dropped %d samples with empty transcriptions (e.g. %s): training and "
                    "scoring need text (htr-ssl-pretrain reads them as images). Fix: give them "
                    "text, or leave them out of the listing", len(empty), ", ".join(empty[:5]))
    return kept


class SplitLeakError(ValueError):
    """Train, validation and test share samples (or writers, where the split promises not to)."""


def check_splits(samples: Sequence[Sample], writer_disjoint: bool) -> str:
    """Raise SplitLeakError if an id or an image is in two splits, or a writer is and the split
    promises writer independence (`writer_disjoint`); return the line a run logs.

    Official split files are checked for ids and images only: REFERENCE.md does not promise
    writer independence for them, so shared writers are reported, not refused.
    """
    parts = {name: [s for s in samples if s.split == name] for name in SPLITS}
    problems = []
    for what, key in (("ids", lambda s: s.id),
                      ("image regions", lambda s: (str(s.image_path), s.bbox))):
        shared = _shared(parts, key)
        if shared:
            problems.append(f"{len(shared)} {what} are in more than one split, e.g. "
                            + "; ".join(shared[:3]))
    writers = _shared(parts, lambda s: s.writer or None)
    if writer_disjoint and writers:
        problems.append(f"{len(writers)} writers are in more than one split of a "
                        "writer-disjoint split, e.g. " + "; ".join(writers[:3]))
    if problems:
        raise SplitLeakError(
            "train/val/test overlap: " + " | ".join(problems) + ". Fix: correct the split "
            "files (or the split column of the manifest) so every sample, image and writer "
            "belongs to one split; a model must never be tested on what it trained on.")
    counts = " / ".join(f"{len(parts[name])} {name}" for name in SPLITS)
    summary = f"split check: {counts}, no shared ids, no shared images"
    if not any(s.writer for s in samples):
        return summary + ", writers unknown"
    if writers:
        return (summary + f", {len(writers)} writers in more than one split (the dataset's own "
                "split; it does not promise writer independence)")
    return summary + ", no shared writers"


def _shared(parts: dict[str, list[Sample]], key) -> list[str]:
    """`'key' in train and test` for every key found in more than one split."""
    where: dict[object, list[str]] = defaultdict(list)
    for name, part in parts.items():
        for k in dict.fromkeys(key(s) for s in part):
            if k is not None:
                where[k].append(name)
    return [f"{_show(k)} in {' and '.join(names)}" for k, names in where.items()
            if len(names) > 1]


def _show(key: object) -> str:
    if isinstance(key, tuple):  # (image path, bbox)
        return repr(key[0]) + (f" region {key[1]}" if key[1] is not None else "")
    return repr(key)
