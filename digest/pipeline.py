"""The only module that wires the stages together: files -> ingest -> store.

It decides nothing itself: ``ingest`` parses, ``store`` remembers. What it adds
is isolation: a bad file becomes an outcome with its error, and the files after
it still go in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from digest import ingest
from digest.config import Settings
from digest.errors import DigestError, InputError
from digest.models import Dump, Ingested
from digest.store import Store


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one dump file: its parse and storage, or the error that stopped it."""

    path: Path
    dump: Dump | None = None
    ingested: Ingested | None = None
    error: DigestError | None = None


def is_dump_name(name: str) -> bool:
    """Files a folder scan takes: not hidden, not still being written (``*.tmp``)."""
    return not name.startswith(".") and not name.endswith(".tmp")


def expand(paths: Sequence[Path]) -> Iterator[Path | FileOutcome]:
    """Files first, folders as their dump files in name order; a bad path as an outcome."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and is_dump_name(p.name))
            if not files:
                yield FileOutcome(path, error=InputError(f"{path}: folder has no dump files; add .txt dumps to it"))
            yield from files
        elif path.exists():
            yield path
        else:
            yield FileOutcome(path, error=InputError(f"{path}: no such file or folder; check the path"))


def parse_files(paths: Sequence[Path], *, settings: Settings, today: date) -> Iterator[FileOutcome]:
    """Read and parse each file; write nothing."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, _ = ingest.load(item, today=today, max_bytes=settings.ingest.max_bytes)
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump)


def ingest_files(paths: Sequence[Path], *, store: Store, settings: Settings, now: datetime) -> Iterator[FileOutcome]:
    """Parse each file and store it: the seen-set learns which of its papers are new."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, raw = ingest.load(item, today=now.astimezone().date(), max_bytes=settings.ingest.max_bytes)
            stored = store.ingest(dump, sha256=raw.sha256, at=now)
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump, ingested=stored)
