"""htr-ssl-predict's work: read every line of the inputs, write records or page copies."""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from htr_ssl.data.crops import materialize_crops
from htr_ssl.eval.confidence import Reading
from htr_ssl.eval.evaluate import Transcriber, read_in_input_order
from htr_ssl.inference.inputs import Inputs
from htr_ssl.inference.outputs import (
    PAGES,
    RecordWriter,
    open_records,
    page_targets,
    record_file,
    write_page,
)

log = logging.getLogger(__name__)


@dataclass
class PredictOptions:
    format: str = "tsv"
    out: str | None = None
    overwrite: bool = False
    link_images: bool = True
    batch_size: int = 16
    num_workers: int = 0
    sort_window: int = 1024


@dataclass
class Plan:
    """The outputs, checked before any model is loaded."""

    records: Path | None = None  # the record file (None: standard output)
    pages: dict[int, Path] | None = None  # unit index -> copy path


def plan(inputs: Inputs, opts: PredictOptions) -> Plan:
    if opts.format in PAGES:
        return Plan(pages=page_targets(opts.format, str(opts.out), opts.overwrite, inputs))
    return Plan(records=record_file(opts.out, opts.overwrite, inputs))


def predict(transcriber: Transcriber, height: int, inputs: Inputs, opts: PredictOptions,
            where: Plan, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Read every line; write each record as it is read, each page copy once its lines are
    read. Returns counts: lines read, pages written."""
    samples, place = inputs.samples()
    stream: TextIO | None = None
    if where.pages is None:
        stream = open_records(where.records, opts.overwrite) if where.records else sys.stdout
    records = RecordWriter(stream, opts.format) if stream is not None else None
    index = {s.id: k for k, s in enumerate(samples)}
    pending: dict[int, dict[int, Reading]] = {}
    written = lines = 0

    def flush(upto: int) -> None:  # every page file before unit `upto` is complete
        nonlocal written
        for u in [u for u in sorted(where.pages or {}) if u < upto]:
            unit = inputs.units[u]
            write_page(unit, where.pages.pop(u), pending.pop(u, {}), opts.overwrite,
                       opts.link_images)
            written += 1

    try:
        with tempfile.TemporaryDirectory(prefix="htr_ssl_predict_") as crops:
            # each page decoded once; a line that cannot be cut was named by the cropping
            samples_to_read = [s for s in materialize_crops(samples, Path(crops), progress=True)
                               if s.bbox is None]
            for sid, reading in read_in_input_order(
                    transcriber, samples_to_read, height, opts.batch_size, opts.num_workers,
                    opts.sort_window, confidences=True):
                unit, order, line = place[index[sid]]
                flush(unit)
                if order is not None:
                    pending.setdefault(unit, {})[order] = reading
                if records is not None:
                    records.write(str(inputs.units[unit].path), line, reading)
                if stream is not sys.stdout:
                    echo(f"{sid}\t{reading.text}")
                lines += 1
            flush(len(inputs.units))
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()
    return {"lines": lines, "pages": written}
