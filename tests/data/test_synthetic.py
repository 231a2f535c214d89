"""The synthetic generator: IAM layout, determinism, writer-disjoint splits, reader round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr_ssl.data.synthetic import GenerateConfig, generate
from htr_ssl.data.synthetic.corpus import to_units, tokenize

CFG = GenerateConfig(n_writers=6, forms_per_writer=1, lines_per_form=3, seed=7, height=64,
                     workers=1, system_fonts=False, val_writers_frac=0.2, test_writers_frac=0.2)


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.split(" ") for ln in lines if ln and not ln.startswith("#")]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate(replace(CFG, out_dir=str(root)))


def test_iam_layout_and_counts(built: tuple[Path, dict]) -> None:
    root, stats = built
    assert (root / "ascii" / "forms.txt").is_file()
    lines, words = _rows(root / "ascii" / "lines.txt"), _rows(root / "ascii" / "words.txt")
    assert len(lines) == 6 * 3 == stats["samples"]
    assert len(list((root / "lines").rglob("*.png"))) == len(lines)
    assert len(list((root / "words").rglob("*.png"))) == len(words) == stats["words"]
    assert len(list((root / "xml").glob("*.xml"))) == 6
    for row in lines:
        lid = row[0]
        form = "-".join(lid.split("-")[:2])
        img = Image.open(root / "lines" / lid.split("-")[0] / form / f"{lid}.png")
        assert row[1] == "ok" and img.size == (int(row[6]), int(row[7]))  # w, h
        pix = np.asarray(img)
        assert pix.min() < 120 < 180 < np.median(pix)  # dark ink on light paper
        assert min(pix[0].min(), pix[-1].min(), pix[:, 0].min(), pix[:, -1].min()) > 120
    for row in words:
        assert len(row) == 10  # id ok gray components x y w h tag text, as IAM ships it
        wid = row[0]
        form = "-".join(wid.split("-")[:2])
        img = Image.open(root / "words" / wid.split("-")[0] / form / f"{wid}.png")
        assert img.size == (int(row[6]), int(row[7]))
    line_tokens = [t for row in lines for t in " ".join(row[8:]).split("|")]
    assert line_tokens == [row[9] for row in words]


def test_same_config_same_bytes_for_any_worker_count(
    built: tuple[Path, dict], tmp_path: Path
) -> None:
    root, _ = built
    generate(replace(CFG, out_dir=str(tmp_path / "w2"), workers=2))
    generate(replace(CFG, out_dir=str(tmp_path / "w1"), workers=1))
    assert _tree(tmp_path / "w2") == _tree(root) == _tree(tmp_path / "w1")


def test_other_seed_other_data(built: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = built
    generate(replace(CFG, out_dir=str(tmp_path), seed=8, n_writers=3))
    assert (tmp_path / "ascii/lines.txt").read_text() != (root / "ascii/lines.txt").read_text()


def test_uttlists_are_writer_disjoint(built: tuple[Path, dict]) -> None:
    root, stats = built
    writer = {r[0]: r[1] for r in _rows(root / "ascii" / "forms.txt")}
    splits = {n: (root / f"{n}.uttlist").read_text().split()
              for n in ("train", "validation", "test")}
    assert sorted(f for ids in splits.values() for f in ids) == sorted(writer)
    by_split = [{writer[f] for f in ids} for ids in splits.values()]
    assert all(by_split)
    assert not (by_split[0] & by_split[1] or by_split[0] & by_split[2] or by_split[1] & by_split[2])
    assert [stats["splits"][k]["writers"] for k in ("train", "val", "test")] == [
        len(w) for w in by_split]


def test_refuses_to_overwrite_silently(built: tuple[Path, dict]) -> None:
    root, _ = built
    with pytest.raises(FileExistsError):
        generate(replace(CFG, out_dir=str(root)))


def test_iam_style_tokens() -> None:
    tokens = tokenize('"Mr. Hall\'s dog," she said (twice).')
    assert tokens == ['"', "Mr.", "Hall", "'s", "dog", ",", '"', "she", "said", "(", "twice",
                      ")", "."]
    assert to_units(tokens)[0] == ['"', "Mr."]
    assert to_units(tokens)[2] == ["dog", ",", '"']


def test_ttf_fonts_from_font_dir(tmp_path: Path) -> None:
    ttf = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf")
    if not ttf.is_file():
        pytest.skip("no TTF font on this machine to stand in for a handwriting font")
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / ttf.name).write_bytes(ttf.read_bytes())
    stats = generate(replace(CFG, out_dir=str(tmp_path / "out"), n_writers=8,
                             font_dir=str(tmp_path / "fonts")))
    assert stats["fonts"] == 6 and stats["samples"] == 8 * 3


def test_iam_reader_reads_it_back(built: tuple[Path, dict]) -> None:
    iam = pytest.importorskip("htr_ssl.data.readers.iam")
    root, stats = built
    lines = iam.read_iam(root, granularity="lines")
    assert len(lines) == stats["samples"]
    expected = {r[0]: " ".join(r[8:]).replace("|", " ") for r in _rows(root / "ascii/lines.txt")}
    assert {s.id: s.text for s in lines} == expected
    split_of = {f: n for n, fname in (("train", "train"), ("val", "validation"),
                                      ("test", "test"))
                for f in (root / f"{fname}.uttlist").read_text().split()}
    assert all(s.split == split_of[s.id[:7]] for s in lines)
    writers = {n: {s.writer for s in lines if s.split == n} for n in ("train", "val", "test")}
    assert all(writers.values()) and sum(map(len, writers.values())) == 6
    words = iam.read_iam(root, granularity="words")
    assert len(words) == stats["words"]
    assert [s.text for s in words] == [r[9] for r in _rows(root / "ascii/words.txt")]
    assert all(s.load().size > 0 for s in words[:5] + lines[:2])
