"""``ingest.read``: bytes to text, and a one-line error for every file that is not a text dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest import ingest
from digest.errors import ReadError

from .conftest import DUMPS, TODAY

LIMIT = 50 << 20


def write(tmp_path: Path, data: bytes, name: str = "dump.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"dump\.txt: the file is empty"),
        (b"\n \n\t\n", r"dump\.txt: the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"dump\.txt: binary data \(NUL byte at offset 8\)"),
        ("Caf\u00e9 title\nabstract".encode("latin-1"), r"dump\.txt: not UTF-8 \(byte 0xe9 at offset 3\); re-save"),
        ("\ufeffTitle".encode("utf-16"), r"dump\.txt: UTF-16 text; re-save it as UTF-8"),
    ],
)
def test_unreadable_bytes_give_one_line_errors_naming_the_file(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ReadError, match=message) as caught:
        ingest.read(write(tmp_path, data), max_bytes=LIMIT)
    assert "\n" not in str(caught.value)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(60 * 1_048_576)  # sparse: 60 MiB without writing them
    with pytest.raises(ReadError, match=r"huge\.txt: 60\.0 MB is over the 50 MB limit; raise ingest\.max_size_mb"):
        ingest.read(path, max_bytes=LIMIT)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"nope\.txt: no such file"):
        ingest.read(tmp_path / "nope.txt", max_bytes=LIMIT)
    with pytest.raises(ReadError, match="is a folder"):
        ingest.read(tmp_path, max_bytes=LIMIT)


def test_bom_is_dropped_and_the_hash_is_of_the_bytes(tmp_path: Path) -> None:
    data = (DUMPS / "003_7a5f3204ee6361bf.txt").read_bytes()
    plain = ingest.read(write(tmp_path, data, "a.txt"), max_bytes=LIMIT)
    bom = ingest.read(write(tmp_path, b"\xef\xbb\xbf" + data, "b.txt"), max_bytes=LIMIT)
    assert bom.text == plain.text
    assert bom.sha256 != plain.sha256
    assert len(plain.sha256) == 64


def test_a_character_cut_at_the_very_end_is_dropped_with_a_warning(tmp_path: Path) -> None:
    data = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_bytes()
    cut = data[: data.index("·".encode()) + 1]  # half of the two-byte middle dot
    dump, raw = ingest.load(write(tmp_path, cut), today=TODAY, max_bytes=LIMIT)
    assert raw.text.endswith("\n")
    assert [p.title for p in dump.papers] == [
        "PD-Quant: Post-Training Quantization based on Prediction Difference Metric"
    ]
    assert any("dropped its last 1 byte(s)" in w.message for w in dump.warnings)


def test_an_invalid_byte_before_the_end_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="offset 5"):
        ingest.read(write(tmp_path, b"Title\xc3(more text\n"), max_bytes=LIMIT)
