"""From a data config to labeled splits, an alphabet and DataLoaders.

This is the one place where reader, splits, label fraction, alphabet and augmentation meet;
training code calls `prepare` and `make_loader` and never sees files.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.crops import default_cache_dir, materialize_crops
from htr_ssl.data.oov import apply_oov_policy, report_oov
from htr_ssl.data.readers import READERS, read_dataset
from htr_ssl.data.sample import Sample, TextImageDataset, collate, collate_readable
from htr_ssl.data.sampler import EpochSampler
from htr_ssl.data.splits import (
    apply_split_file,
    check_splits,
    fallback_split,
    label_subset,
    select,
    write_ids,
)
from htr_ssl.data.transforms import RECIPES, AugmentConfig, as_callable, build_augment

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which dataset, how it is split, how much of it is labeled, how images are prepared.

    `labels` is a fraction in (0, 1] or an absolute number of training lines; `reader_args`
    go to the reader (e.g. granularity, keep_err, split_dir). `crop_cache` is where lines cut
    from page images are kept ("auto": ~/.cache/htr-ssl/crops; None: crop on every load).
    `split_file` (lines `id<TAB>train|val|test`, e.g. a run's splits.tsv) sets every sample's
    split, in place of the format's own or the fallback one.
    """

    name: str = "iam"
    root: str = "datasets/iam"
    reader_args: dict = field(default_factory=dict)
    height: int = 64
    max_width: int | None = None
    val_frac: float = 0.1
    test_frac: float = 0.2
    split_seed: int = 0
    labels: float = 1.0
    label_seed: int = 0
    oov: str = "error"
    oov_map: dict = field(default_factory=dict)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batch_size: int = 16
    eval_batch_size: int = 32
    num_workers: int = 0
    bucket: bool = True
    crop_cache: str | None = "auto"
    strict_images: bool = False
    word_images: bool = False
    split_file: str | None = None

    def __post_init__(self) -> None:
        """Refuse out-of-range options before any file is read, naming the option."""
        if self.name not in READERS:
            raise ValueError(f"data.name={self.name!r} is not a dataset format; valid: "
                             f"{', '.join(sorted(READERS))}")
        _labels_amount(self.labels)
        for option in ("height", "batch_size", "eval_batch_size"):
            if getattr(self, option) < 1:
                raise ValueError(f"data.{option}={getattr(self, option)} must be >= 1")
        if self.max_width is not None and self.max_width < 1:
            raise ValueError(f"data.max_width={self.max_width} must be >= 1 (or null: no cap)")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers={self.num_workers} must be >= 0")
        if not (0 <= self.val_frac < 1 and 0 <= self.test_frac < 1
                and self.val_frac + self.test_frac < 1):
            raise ValueError(f"data.val_frac={self.val_frac} and data.test_frac="
                             f"{self.test_frac} must be in [0, 1) with a sum below 1")
        if self.oov not in ("error", "drop", "map"):
            raise ValueError(f"data.oov={self.oov!r}; use error, drop or map")
        augment = self.augment
        if isinstance(augment, AugmentConfig):
            if augment.recipe not in RECIPES:
                raise ValueError(f"data.augment.recipe={augment.recipe!r}; valid: "
                                 f"{', '.join(RECIPES)}")
            if not 0 <= augment.p <= 1:
                raise ValueError(f"data.augment.p={augment.p} must be in [0, 1]")


@dataclass
class Prepared:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    alphabet: Alphabet
    # the whole training split, labeled or not, as read (page lines not yet cut out): the
    # unlabeled images a pretext trained alongside sees (finetune.aux)
    pool: list[Sample] = field(default_factory=list)

    def split(self, name: str) -> list[Sample]:
        return {"train": self.train, "val": self.val, "test": self.test}[check_split(name)]


SPLITS = ("train", "val", "test")


def check_split(name: str, option: str = "split") -> str:
    """`name` if it is a split, else a ValueError naming the option and the valid ones."""
    if name not in SPLITS:
        raise ValueError(f"{option}={name!r} is not a split; use {', '.join(SPLITS)}")
    return name


def read_samples(cfg: DataConfig, unlabeled: bool = False) -> list[Sample]:
    """The dataset as its reader gives it (with `split_file` applied), not yet split.

    `unlabeled` keeps samples without a transcription (pretraining never reads the text).
    """
    samples = read_dataset(cfg.name, Path(cfg.root), unlabeled, **cfg.reader_args)
    if not samples:
        raise ValueError(f"dataset {cfg.name!r} at {cfg.root} has no usable samples")
    if cfg.split_file:
        samples = apply_split_file(samples, Path(cfg.split_file))
        if not samples:
            raise ValueError(f"data.split_file={cfg.split_file} lists none of the samples of "
                             f"{cfg.name} at {cfg.root}")
    return samples


def has_split(samples: list[Sample]) -> bool:
    """Whether every sample has a split of its own (official lists, a manifest column, a
    split file)."""
    return all(s.split for s in samples)


def load_samples(cfg: DataConfig, unlabeled: bool = False) -> list[Sample]:
    """Read the dataset; give it the fallback split (writer-disjoint when the writers allow)
    when it has none of its own."""
    samples = read_samples(cfg, unlabeled)
    disjoint = False
    if not has_split(samples):
        log.info("no official split for %s: using a writer-disjoint split (seed %d)",
                 cfg.name, cfg.split_seed)
        samples, disjoint = fallback_split(samples, cfg.val_frac, cfg.test_frac,
                                           cfg.split_seed, f"{cfg.name} at {cfg.root}")
    log.info("%s", check_splits(samples, writer_disjoint=disjoint))
    return samples


def _labels_amount(labels: float) -> float | int:
    """1.0 and 0.05 are fractions; 250 (or 250.0) is a line count."""
    if isinstance(labels, bool) or not isinstance(labels, int | float) or not labels > 0 \
            or not math.isfinite(labels) or (labels > 1 and labels != int(labels)):
        raise ValueError(f"data.labels={labels!r}: give a fraction of the training split in "
                         "(0, 1] (e.g. 0.1) or a whole number of labeled lines (e.g. 250)")
    if labels > 1:
        return int(labels)
    return float(labels)


def prepare(cfg: DataConfig, run_dir: Path | None = None,
            alphabet: Alphabet | None = None) -> Prepared:
    """Split, take the label fraction, build (or reuse) the alphabet, apply the OOV policy.

    The alphabet is built from the whole training split's transcriptions (not only the labeled
    fraction) so that every fraction of one dataset shares one output layer. The chosen ids are
    written into `run_dir` (splits.tsv, labeled_ids.tsv) so a run can be audited.
    """
    samples = load_samples(cfg)
    train_all = select(samples, "train")
    if not train_all:
        raise ValueError(f"dataset {cfg.name!r} at {cfg.root} has no training samples")
    train = label_subset(train_all, _labels_amount(cfg.labels), cfg.label_seed)
    alphabet = alphabet or Alphabet.from_texts(s.text for s in train_all)
    val, test = select(samples, "val"), select(samples, "test")
    train, val, test = (cached_crops(part, cfg) for part in (train, val, test))
    prepared = Prepared(
        train=apply_oov_policy(train, alphabet, cfg.oov, cfg.oov_map),
        val=eval_split(val, alphabet, cfg, "val"),
        test=eval_split(test, alphabet, cfg, "test"),
        alphabet=alphabet,
        pool=train_all,
    )
    log.info("%s: %d labeled train (of %d), %d val, %d test, %d symbols", cfg.name,
             len(prepared.train), len(train_all), len(prepared.val), len(prepared.test),
             len(alphabet))
    if run_dir is not None:
        write_ids(samples, Path(run_dir) / "splits.tsv")
        write_ids(prepared.train, Path(run_dir) / "labeled_ids.tsv")
    return prepared


def whole_set(cfg: DataConfig, alphabet: Alphabet) -> list[Sample]:
    """Every labeled sample of a dataset, whatever split it has: a set scored as a whole.
    Characters the alphabet lacks are reported, as for a test split."""
    samples = cached_crops(read_samples(cfg), cfg)
    log.info("%s at %s: %d labeled samples, scored as one set", cfg.name, cfg.root,
             len(samples))
    return eval_split(samples, alphabet, cfg, "set")


def cached_crops(samples: list[Sample], cfg: DataConfig) -> list[Sample]:
    """Samples cut from page images, redirected to their cached line crops (see crops.py)."""
    if not cfg.crop_cache:
        return samples
    cache = default_cache_dir() if cfg.crop_cache == "auto" else Path(cfg.crop_cache)
    return materialize_crops(samples, cache, progress=True)


def eval_split(samples: list[Sample], alphabet: Alphabet, cfg: DataConfig,
                name: str) -> list[Sample]:
    """Evaluation keeps the true references: unknown characters are reported (and count as
    errors) unless the user asked to drop or map them."""
    if cfg.oov == "error":
        report_oov(samples, alphabet, f"{cfg.name} {name} split")
        return samples
    return apply_oov_policy(samples, alphabet, cfg.oov, cfg.oov_map)


def make_loader(
    samples: list[Sample],
    alphabet: Alphabet | None,
    cfg: DataConfig,
    train: bool,
    seed: int = 0,
    rank: int = 0,
    world: int = 1,
    views: int = 1,
) -> DataLoader:
    """A DataLoader over `samples`: augmented, shuffled and with encoded targets when `train`;
    evaluation loaders carry only the reference texts (which may hold unknown characters).
    `views` > 1 gives each training image that many aligned augmentations (contrastive pretexts).

    Worker processes stay alive across epochs (no re-spawn, no re-import each epoch) and run
    single-threaded; batches are pinned when a GPU is present so the copy overlaps compute.
    Resumption stays exact: the sampler, in the main process, gives every item its own
    augmentation seed, so which worker decodes it does not matter.
    """
    augment = as_callable(build_augment(cfg.augment)) if train else None
    dataset = TextImageDataset(samples, alphabet if train else None, cfg.height, augment,
                               cfg.max_width, cfg.strict_images, views if train else 1)
    batch_size = cfg.batch_size if train else cfg.eval_batch_size
    widths = [s.aspect() for s in samples] if cfg.bucket else None
    sampler = EpochSampler(len(samples), seed=seed, shuffle=train, rank=rank, world=world,
                           widths=widths, batch_size=batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate if train else collate_readable,
        num_workers=cfg.num_workers,
        drop_last=False,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=init_worker if cfg.num_workers > 0 else None,
        generator=torch.Generator(),  # keeps the global RNG untouched, for exact resumption
    )


def init_worker(_worker_id: int) -> None:
    """The workers are the parallelism: OpenCV's and torch's own thread pools inside each of
    them would oversubscribe the cores (and OpenCV's can hang after fork)."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
