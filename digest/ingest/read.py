"""Bytes to text: a dump file read as strict UTF-8 (``read``), its layout picked and parsed (``parse``, ``load``).

The only I/O of ingest: only regular files are opened, and every refusal is one
line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import BinaryIO

from digest.errors import ReadError
from digest.ingest.hfjson import looks_like_json, parse_json
from digest.ingest.parse import DEFAULT_MAX_PAPERS, parse_page
from digest.models import Dump, ParseWarning


@dataclass(frozen=True, slots=True)
class Text:
    """A dump file's text, the sha256 of its bytes, and what decoding had to drop."""

    path: Path
    text: str
    sha256: str
    size: int
    warnings: tuple[ParseWarning, ...] = ()


def read(path: Path, *, max_bytes: int) -> Text:
    """Read a dump file as strict UTF-8 (a BOM is fine), refusing what is not text.

    Only a regular file is read: a symbolic link (which could point anywhere on
    the machine), a FIFO, a device or a socket is refused without being opened
    for reading, so nothing blocks and nothing outside the dumps is ingested.
    Raises ``ReadError`` for those, a missing file, a file over ``max_bytes``,
    binary data and any byte sequence that is not UTF-8, naming the byte
    offset. A multi-byte character cut off by truncation at the very end is
    dropped with a warning instead, so a truncated download keeps its papers.
    """
    try:
        with _open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise ReadError(
                    f"{path}: {size / 1_048_576:.1f} MB is over the {max_bytes / 1_048_576:.4g} MB limit; "
                    "raise ingest.max_size_mb in the config (or DIGEST_INGEST__MAX_SIZE_MB)"
                )
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise ReadError(f"{path}: no such file; check the path") from e
    except PermissionError as e:
        raise ReadError(f"{path}: permission denied; make the file readable") from e
    except OSError as e:
        raise ReadError(f"{path}: cannot read ({e.strerror}); check the file") from e
    if len(data) > max_bytes:
        raise ReadError(f"{path}: grew past the {max_bytes / 1_048_576:.4g} MB limit while being read")
    if not data.strip():
        raise ReadError(f"{path}: the file is empty; expected the text of a Daily Papers page")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(f"{path}: UTF-16 text; re-save it as UTF-8 (iconv -f UTF-16 -t UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ReadError(f"{path}: binary data (NUL byte at offset {nul}); expected a text dump")
    digest = hashlib.sha256(data).hexdigest()
    warnings: tuple[ParseWarning, ...] = ()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(data):
            text = data[: e.start].decode("utf-8-sig")
            warnings = (
                ParseWarning(
                    text.count("\n") + 1,
                    f"file ends inside a character; dropped its last {len(data) - e.start} byte(s)",
                ),
            )
        else:
            raise ReadError(
                f"{path}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
                "re-save it as UTF-8 (e.g. iconv -f ISO-8859-1 -t UTF-8)"
            ) from e
    return Text(path=path, text=text, sha256=digest, size=len(data), warnings=warnings)


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (not following a symbolic link)."""
    if path.is_symlink():
        raise ReadError(f"{path}: a symbolic link; dumps are read only from regular files, so copy the file in")
    # O_NOFOLLOW closes the gap between that look and the open; O_NONBLOCK keeps a FIFO from blocking.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ReadError(f"{path}: is a folder, not a dump file")
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise ReadError(f"{path}: {kind}, not a regular file; dumps must be regular files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def parse(text: str, *, source: str, today: date, max_papers: int = DEFAULT_MAX_PAPERS) -> Dump:
    """A dump's text as a ``Dump``, in whichever layout it is: Hugging Face's JSON (``hfjson``), else a
    saved page (``parse.parse_page``). A new layout is one more branch here."""
    if looks_like_json(text):
        return parse_json(text, source=source, max_papers=max_papers)
    return parse_page(text, source=source, today=today, max_papers=max_papers)


def load(path: Path, *, today: date, max_bytes: int, max_papers: int = DEFAULT_MAX_PAPERS) -> tuple[Dump, Text]:
    """``read`` then ``parse``, with decoding warnings merged into the dump's."""
    raw = read(path, max_bytes=max_bytes)
    dump = parse(raw.text, source=str(path), today=today, max_papers=max_papers)
    if raw.warnings:
        dump = replace(dump, warnings=tuple(sorted(raw.warnings + dump.warnings, key=lambda w: w.line)))
    return dump, raw
