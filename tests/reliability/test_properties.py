"""Property-based tests: the alphabet round-trips any text; readers survive any file content.

A reader fed arbitrary bytes may return samples or raise its own DatasetFormatError /
DatasetNotFoundError (which the commands print as one line), never anything else.
"""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.readers import read_dataset
from htr_ssl.data.readers.alto import read_alto
from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
from htr_ssl.data.readers.folder import read_folder, read_tsv
from htr_ssl.data.readers.iam import read_iam
from htr_ssl.data.readers.pagexml import read_pagexml
from htr_ssl.data.sample import Sample

FAST = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
OWN_ERRORS = (DatasetFormatError, DatasetNotFoundError)

# ------------------------------------------------------------------------------- alphabet

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@FAST
@given(texts)
def test_alphabet_round_trips_any_text_over_its_characters(text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    alphabet = Alphabet.from_texts([text])
    ids = alphabet.encode(nfc)
    assert all(1 <= i <= len(alphabet) for i in ids)
    assert alphabet.decode(ids) == nfc
    # composed or decomposed input: the same symbols once normalized
    nfd = unicodedata.normalize("NFD", text)
    assert alphabet.encode(unicodedata.normalize("NFC", nfd)) == ids


@FAST
@given(st.lists(texts, max_size=5))
def test_alphabet_save_load_round_trip(tmp_path_factory, corpus: list[str]) -> None:
    alphabet = Alphabet.from_texts(corpus)
    path = tmp_path_factory.mktemp("alphabet") / "alphabet.json"
    alphabet.save(path)
    assert Alphabet.load(path) == alphabet
    assert Alphabet.from_dict(alphabet.to_dict()) == alphabet
    assert alphabet.tokens()[1:-2] == list(alphabet.chars)


# --------------------------------------------------------------------------------- readers


@contextmanager
def fresh_dir() -> Iterator[Path]:
    """A new folder per example (hypothesis reuses the test's fixtures across examples)."""
    path = Path(tempfile.mkdtemp(prefix="htr_ssl_prop_"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def survives(read: Callable[[], list[Sample]]) -> None:
    """The reader returns Samples or raises one of its own errors, nothing else."""
    try:
        samples = read()
    except OWN_ERRORS as err:
        assert str(err), "an error with no message"
        return
    assert all(isinstance(s, Sample) for s in samples)


blobs = st.binary(max_size=300)
# Row-shaped text is much likelier than random bytes to get past the first field checks.
rows = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
                max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8"))
contents = st.one_of(blobs, rows)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@FAST
@given(contents, contents)
def test_iam_reader_survives_any_lines_txt_and_split_file(lines: bytes, split: bytes) -> None:
    with fresh_dir() as root:
        (root / "ascii").mkdir()
        (root / "ascii" / "lines.txt").write_bytes(lines)
        (root / "ascii" / "forms.txt").write_bytes(split)
        (root / "train.uttlist").write_bytes(split)
        survives(lambda: read_iam(root))
        survives(lambda: read_dataset("iam", root))


@FAST
@given(contents)
def test_iam_words_reader_survives_any_words_txt(words: bytes) -> None:
    with fresh_dir() as root:
        (root / "ascii").mkdir()
        (root / "ascii" / "words.txt").write_bytes(words)
        survives(lambda: read_iam(root, granularity="words"))


paths = st.one_of(values, st.sampled_from([".", "..", "/", "a.png", " ", "a/../", "~"]))
tsv_rows = st.lists(st.tuples(paths, values, values, st.sampled_from(["", "train", "x"])),
                    max_size=4).map(lambda rows: "\n".join("\t".join(r) for r in rows).encode())


@FAST
@given(st.one_of(contents, tsv_rows))
def test_tsv_reader_survives_any_manifest(manifest: bytes) -> None:
    with fresh_dir() as root:
        (root / "manifest.tsv").write_bytes(manifest)
        (root / "a.png").write_bytes(b"\x89PNG")
        survives(lambda: read_tsv(root))
        survives(lambda: read_tsv(root, strict=True))


@FAST
@given(contents, blobs)
def test_folder_reader_survives_any_transcription_and_image(text: bytes, image: bytes) -> None:
    with fresh_dir() as root:
        (root / "x.png").write_bytes(image)
        (root / "x.txt").write_bytes(text)
        survives(lambda: read_folder(root))
        survives(lambda: read_dataset("folder", root, strict=True))


numbers = st.one_of(values, st.sampled_from(["nan", "inf", "-inf", "1e400", "-5", "3.7", "0"]))


def _page(image: str, points: str, text: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="http://schema.primaresearch.'
            f'org/PAGE/gts/pagecontent/2019-07-15"><Page imageFilename={quoteattr(image)}>'
            f'<TextRegion id="r"><TextLine id="l1"><Coords points={quoteattr(points)}/>'
            f"<TextEquiv><Unicode>{escape(text)}</Unicode></TextEquiv></TextLine>"
            "</TextRegion></Page></PcGts>")


@FAST
@given(st.one_of(blobs, st.builds(_page, values, st.one_of(values, numbers.map(
    lambda v: f"0,0 {v},0 {v},{v} 0,{v}")), values)))
def test_pagexml_reader_survives_any_file(data: bytes | str) -> None:
    with fresh_dir() as root:
        path = root / "page.xml"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        survives(lambda: read_pagexml(root))
        survives(lambda: read_pagexml(root, strict=True))


def _alto(file_name: str, hpos: str, width: str, points: str, content: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/'
            f'alto/ns-v4#"><Description><sourceImageInformation><fileName>{escape(file_name)}'
            "</fileName></sourceImageInformation></Description><Layout><Page><PrintSpace>"
            f'<TextLine ID="t1" HPOS={quoteattr(hpos)} VPOS="0" WIDTH={quoteattr(width)} '
            f'HEIGHT="10"><Shape><Polygon POINTS={quoteattr(points)}/></Shape>'
            f"<String CONTENT={quoteattr(content)}/></TextLine>"
            "</PrintSpace></Page></Layout></alto>")


@FAST
@given(st.one_of(blobs, st.builds(_alto, values, numbers, numbers, values, values)))
def test_alto_reader_survives_any_file(data: bytes | str) -> None:
    with fresh_dir() as root:
        path = root / "page.xml"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        survives(lambda: read_alto(root))
        survives(lambda: read_alto(root, strict=True))
