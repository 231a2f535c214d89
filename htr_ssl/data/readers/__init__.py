"""Dataset readers by name: each turns a format, as distributed, into a list of Samples."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from htr_ssl.data.readers.alto import read_alto
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.cvl import read_cvl
from htr_ssl.data.readers.folder import read_folder, read_tsv
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.readers.images import read_images
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.data.readers.rimes import read_rimes, read_rimes_icdar2011, read_rimes_words
from htr_ssl.data.sample import Sample
from htr_ssl.data.splits import drop_empty

READERS: dict[str, Callable[..., list[Sample]]] = {
    "iam": read_iam,
    "cvl": read_cvl,
    "rimes": read_rimes,
    "rimes_icdar2011": read_rimes_icdar2011,
    "rimes_words": read_rimes_words,
    "pagexml": read_pagexml,
    "alto": read_alto,
    "folder": read_folder,
    "tsv": read_tsv,
    "images": read_images,
}


def read_dataset(name: str, root: Path, unlabeled: bool = False, **kwargs: object
                 ) -> list[Sample]:
    """Read dataset `name` from `root` with its reader's options.

    Texts are NFC-normalized (so "é" is one symbol whether the file composed it or not, as the
    alphabet expects) and empty ones are dropped with a count, unless `unlabeled` (pretraining
    reads images only and keeps every one).
    """
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(READERS))}")
    samples = READERS[name](Path(root), **kwargs)
    samples = [s if unicodedata.is_normalized("NFC", s.text)
               else replace(s, text=unicodedata.normalize("NFC", s.text)) for s in samples]
    return samples if unlabeled else drop_empty(samples)


__all__ = ["READERS", "DatasetFormatError", "DatasetNotFoundError", "Sample", "read_dataset"]
