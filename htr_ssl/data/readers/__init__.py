"""Dataset readers by name: each turns a format, as distributed, into a list of Samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from htr_ssl.data.readers.alto import read_alto
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.cvl import read_cvl
from htr_ssl.data.readers.folder import read_folder, read_tsv
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.data.readers.rimes import read_rimes, read_rimes_icdar2011
from htr_ssl.data.sample import Sample
from htr_ssl.data.splits import drop_empty

READERS: dict[str, Callable[..., list[Sample]]] = {
    "iam": read_iam,
    "cvl": read_cvl,
    "rimes": read_rimes,
    "rimes_icdar2011": read_rimes_icdar2011,
    "pagexml": read_pagexml,
    "alto": read_alto,
    "folder": read_folder,
    "tsv": read_tsv,
}


def read_dataset(name: str, root: Path, **kwargs: object) -> list[Sample]:
    """Read dataset `name` from `root` with its reader's options; empty texts are dropped."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(READERS))}")
    return drop_empty(READERS[name](Path(root), **kwargs))


__all__ = ["READERS", "DatasetFormatError", "DatasetNotFoundError", "Sample", "read_dataset"]
