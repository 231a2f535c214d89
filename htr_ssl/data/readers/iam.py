"""IAM Handwriting Database 3.0, read from `ascii/*.txt` exactly as distributed.

Rows are split on their fixed fields only, so the transcription (the last field) keeps any
spaces it has: lines.txt has 8 fields before it (id, flag, graylevel, components, x, y, w, h),
words.txt 9 (id, flag, graylevel, components, x, y, w, h, tag), as in the files' own headers
(`a01-000u-00-00 ok 154 1 408 768 27 51 AT A`). In lines.txt `|` stands for a space. The
segmentation flag is `ok` or `er` (some documentation writes `err`; both are accepted).
Writers come from `ascii/forms.txt`, else from `xml/<form>.xml`. Aachen `*.uttlist` files
(form ids) give train/val/test when present.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Literal

from htr_ssl.data.readers.common import (
    DatasetFormatError,
    DatasetNotFoundError,
    data_rows,
    format_error,
    keep_existing,
    parse_xml,
    read_id_list,
    require,
)
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

README = "datasets/iam/README.md"
SPLIT_FILES = {"train": "train.uttlist", "val": "validation.uttlist", "test": "test.uttlist"}
FIELDS = {"lines": 9, "words": 10}  # including the transcription
BAD_FLAGS = ("er", "err")


def form_of(sample_id: str) -> str:
    """`a01-000u-00(-00)` -> `a01-000u`."""
    return "-".join(sample_id.split("-")[:2])


def read_iam(
    root: Path,
    granularity: Literal["lines", "words"] = "lines",
    keep_err: bool = False,
    split_dir: Path | None = None,
    strict: bool = False,
) -> list[Sample]:
    """IAM lines or words with writer ids and, when split files exist, Aachen splits."""
    if granularity not in ("lines", "words"):
        raise ValueError(f"IAM granularity must be 'lines' or 'words', not {granularity!r}")
    root = Path(root)
    table = require(root, f"ascii/{granularity}.txt", "IAM", README)
    samples = _read_table(root, table, granularity, keep_err)
    writers = _writers(root, {form_of(s.id) for s in samples}, strict)
    samples = [replace(s, writer=writers.get(form_of(s.id), "")) for s in samples]
    samples = _assign_splits(samples, _split_lists(root, split_dir))
    return keep_existing(samples, strict)


def _read_table(root: Path, table: Path, granularity: str, keep_err: bool) -> list[Sample]:
    samples, n_err = [], 0
    n_fields = FIELDS[granularity]
    for lineno, row in data_rows(table):
        fields = row.split(" ", n_fields - 1)
        if len(fields) < n_fields:
            raise format_error(table, lineno, f"expected {n_fields} space-separated fields", row)
        sid, flag, text = fields[0], fields[1], fields[-1]
        if flag != "ok" and flag not in BAD_FLAGS:
            raise format_error(table, lineno, f"segmentation flag must be ok/er, got {flag!r}")
        if flag in BAD_FLAGS and not keep_err:
            n_err += 1
            continue
        if granularity == "lines":
            text = text.replace("|", " ")
        parts = sid.split("-")
        if len(parts) < 3:
            raise format_error(table, lineno, f"id {sid!r} is not like a01-000u-00", row)
        image = root / granularity / parts[0] / form_of(sid) / f"{sid}.png"
        samples.append(Sample(id=sid, image_path=image, text=text.strip()))
    if n_err:
        log.info("IAM: dropped %d %s flagged 'er' (keep_err=False)", n_err, granularity)
    return samples


def _writers(root: Path, forms: set[str], strict: bool) -> dict[str, str]:
    """Writer id per form: forms.txt first, then the form's XML header."""
    table: dict[str, str] = {}
    forms_txt = root / "ascii" / "forms.txt"
    if forms_txt.is_file():
        for lineno, row in data_rows(forms_txt):
            fields = row.split()
            if len(fields) < 2:
                raise format_error(forms_txt, lineno, "expected form id and writer id", row)
            table[fields[0]] = fields[1]
    out: dict[str, str] = {}
    unknown = 0
    for form in sorted(forms):
        # Some copies of forms.txt list `a01-000` where the images say `a01-000u`.
        writer = table.get(form) or table.get(form.rstrip("abcdefghijklmnopqrstuvwxyz"))
        if writer is None:
            writer = _xml_writer(root / "xml" / f"{form}.xml", strict)
        if writer:
            out[form] = writer
        else:
            unknown += 1
    if unknown:
        log.warning(
            "IAM: no writer id for %d forms (neither ascii/forms.txt nor xml/<form>.xml)", unknown
        )
    return out


def _xml_writer(path: Path, strict: bool) -> str | None:
    if not path.is_file():
        return None
    try:
        return parse_xml(path).get("writer-id")
    except ValueError:
        if strict:
            raise
        log.warning("IAM: cannot read writer id from %s", path, exc_info=True)
        return None


def _split_lists(root: Path, split_dir: Path | None) -> dict[str, set[str]] | None:
    """Form ids per split from the Aachen lists, or None when there are none."""
    if split_dir is not None:
        folders = [Path(split_dir)]
        if not any((Path(split_dir) / f).is_file() for f in SPLIT_FILES.values()):
            raise DatasetNotFoundError(
                f"IAM: split_dir {split_dir} has none of {', '.join(SPLIT_FILES.values())}; "
                f"see {README}"
            )
    else:
        folders = [root, root / "splits"]
    for folder in folders:
        found = {k: folder / f for k, f in SPLIT_FILES.items() if (folder / f).is_file()}
        if found:
            if len(found) < len(SPLIT_FILES):
                log.warning("IAM: only %s split files found in %s", sorted(found), folder)
            lists = {k: set(read_id_list(p)) for k, p in found.items()}
            _refuse_overlap(lists, found)
            return lists
    return None


def _refuse_overlap(lists: dict[str, set[str]], files: dict[str, Path]) -> None:
    """A form in two split lists would be trained on and tested on (or silently moved)."""
    names = sorted(lists)
    shared = [(i, a, b) for n, a in enumerate(names) for b in names[n + 1:]
              for i in sorted(lists[a] & lists[b])]
    if shared:
        i, a, b = shared[0]
        raise DatasetFormatError(
            f"IAM: {len(shared)} ids are in more than one split list, e.g. {i!r} in both "
            f"{files[a]} and {files[b]}. Fix: correct the split files so each form is in one "
            "list; a model must never be tested on what it trained on")


def _assign_splits(samples: list[Sample], lists: dict[str, set[str]] | None) -> list[Sample]:
    if lists is None:
        log.info("IAM: no Aachen split files; split left empty for a writer-disjoint split")
        return samples
    out = []
    for s in samples:
        split = next((k for k, ids in lists.items() if form_of(s.id) in ids or s.id in ids), "")
        if split:
            out.append(replace(s, split=split))
    if len(out) < len(samples):
        log.info("IAM: dropped %d samples whose form is in no split list", len(samples) - len(out))
    return out
