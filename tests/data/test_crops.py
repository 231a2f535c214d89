"""Page-region samples are cut once into cached line images that load the same pixels."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data import crops
from htr_ssl.data.crops import materialize_crops
from htr_ssl.data.sample import Sample


@pytest.fixture()
def page(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "page.png"
    Image.fromarray(rng.integers(0, 255, (120, 200), dtype=np.uint8)).save(path)
    return path


def _samples(page: Path) -> list[Sample]:
    return [
        Sample("p/l1", page, "one", bbox=(10, 10, 150, 40)),
        Sample("p/l2", page, "two", bbox=(5, 50, 190, 90),
               polygon=((5, 50), (189, 55), (150, 89), (20, 80))),
        Sample("plain", page, "whole page"),
    ]


def test_crops_load_the_same_pixels_and_are_reused(page, tmp_path, monkeypatch):
    samples = _samples(page)
    out = materialize_crops(samples, tmp_path / "cache")
    assert [s.bbox for s in out] == [None, None, None] and out[2] == samples[2]
    for before, after in zip(samples, out, strict=True):
        assert np.array_equal(before.load(), after.load())
        assert (after.id, after.text) == (before.id, before.text)
    assert len(list((tmp_path / "cache").glob("*.png"))) == 2

    def no_decoding(*args, **kwargs):
        raise AssertionError("the page was decoded again")

    monkeypatch.setattr(crops, "load_gray", no_decoding)
    assert materialize_crops(samples, tmp_path / "cache") == out


def test_changed_page_gets_new_crops(page, tmp_path):
    first = materialize_crops(_samples(page), tmp_path / "cache")
    Image.fromarray(np.zeros((120, 200), np.uint8)).save(page)
    second = materialize_crops(_samples(page), tmp_path / "cache")
    assert first[0].image_path != second[0].image_path
    assert second[0].load().max() == 0


def test_unreadable_page_keeps_samples(tmp_path, caplog):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    samples = [Sample("x", bad, "t", bbox=(0, 0, 5, 5))]
    assert materialize_crops(samples, tmp_path / "cache") == samples
    assert "cannot crop lines from" in caplog.text


PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">
 <Page imageFilename="{image}" imageWidth="200" imageHeight="120"><TextRegion id="r">
  <TextLine id="l1"><Coords points="10,10 150,10 150,40 10,40"/>
   <TextEquiv><Unicode>first line</Unicode></TextEquiv></TextLine>
  <TextLine id="l2"><Coords points="5,50 189,55 150,89 20,80"/>
   <TextEquiv><Unicode>second line</Unicode></TextEquiv></TextLine>
 </TextRegion></Page></PcGts>
"""


def test_prepare_serves_page_lines_from_the_cache(tmp_path):
    from htr_ssl.data.pipeline import DataConfig, prepare

    rng = np.random.default_rng(1)
    root = tmp_path / "pages"
    root.mkdir()
    for n in range(6):
        Image.fromarray(rng.integers(0, 255, (120, 200), dtype=np.uint8)).save(root / f"{n}.png")
        (root / f"{n}.xml").write_text(PAGE.format(image=f"{n}.png"))
    cfg = DataConfig(name="pagexml", root=str(root), crop_cache=str(tmp_path / "cache"))
    data = prepare(cfg)
    lines = data.train + data.val + data.test
    assert len(lines) == 12
    assert all(s.bbox is None and s.image_path.parent == tmp_path / "cache" for s in lines)
    uncached = prepare(DataConfig(name="pagexml", root=str(root), crop_cache=None))
    assert all(s.bbox is not None for s in uncached.train)
    by_id = {s.id: s for s in uncached.train}
    assert all(np.array_equal(s.load(), by_id[s.id].load()) for s in data.train)
