"""What pretraining reads: every image it is given (less a validation share), PAGE lines
without text included; a dataset's own split keeps its test lines unseen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.pipeline import DataConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.pretext.registry import pretext_config
from htr_ssl.train.pretrain import PretrainJob, unlabeled_splits
from htr_ssl.train.trainer_config import TrainerConfig


def _job(data: DataConfig, splits: tuple[str, ...] = ("auto",)) -> PretrainJob:
    return PretrainJob(data, EncoderConfig("small", 32), {"rotation": pretext_config("rotation")},
                       TrainerConfig(max_steps=1), Path("unused"), splits=splits)


def _images(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((32, 80), 200, np.uint8)).save(root / f"{i:03d}.png")


def test_two_collections_are_pretrained_on_whole(tmp_path):
    """Two sub-folders used to leave '0 train' and stop with 'no samples in split(s)'."""
    _images(tmp_path / "letters", 47)
    _images(tmp_path / "diaries", 22)
    data = DataConfig(name="images", root=str(tmp_path), crop_cache=None)
    train, val = unlabeled_splits(_job(data))
    assert (len(train), len(val)) == (62, 7)  # data.val_frac of the lines, for the val loss
    assert {s.writer for s in train} == {"letters", "diaries"}
    with pytest.raises(ValueError, match="Fix: splits=auto pretrains on every image"):
        unlabeled_splits(_job(DataConfig(name="images", root=str(tmp_path), test_frac=0.0,
                                         crop_cache=None), ("test",)))


def test_page_lines_without_text_are_pretrained_on(tmp_path):
    Image.fromarray(np.full((100, 200), 30, np.uint8)).save(tmp_path / "p.png")
    lines = "".join(f'<TextLine id="l{k}"><Coords points="5,{10 * k} 90,{10 * k} '
                    f'90,{10 * k + 8}"/></TextLine>' for k in range(1, 9))
    (tmp_path / "p.xml").write_text(
        f'<PcGts><Page imageFilename="p.png"><TextRegion>{lines}</TextRegion></Page></PcGts>')
    train, val = unlabeled_splits(_job(DataConfig(name="pagexml", root=str(tmp_path),
                                                  crop_cache=None)))
    assert len(train) + len(val) == 8 and len(val) == 1


def test_a_dataset_with_its_own_split_keeps_its_test_lines_unseen(tmp_path, tiny_lines):
    rows = [f"{p.name}\tx\t\t{('train', 'val', 'test')[k % 3]}"
            for k, p in enumerate(sorted(tiny_lines.glob("*.png")))]
    (tmp_path / "m.tsv").write_text("\n".join(rows))
    for row in rows:
        (tmp_path / row.split("\t")[0]).write_bytes((tiny_lines / row.split("\t")[0]).read_bytes())
    train, val = unlabeled_splits(_job(DataConfig(name="tsv", root=str(tmp_path / "m.tsv"),
                                                  crop_cache=None)))
    assert (len(train), len(val)) == (10, 10)
    assert {s.split for s in train} == {"train"}
