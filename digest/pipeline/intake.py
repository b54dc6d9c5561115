"""Dump files in: paths expanded to files, each read and parsed, and stored (the seen-set learns what is new).

A bad file becomes a ``FileOutcome`` with its error, and the rest go on.
"""

from __future__ import annotations

import os
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


def dump_files(folder: Path) -> list[Path]:
    """A folder's entries in name order, except subfolders, hidden and ``*.tmp`` files.

    Symbolic links, FIFOs and devices are listed too (without following or
    opening them), so that reading refuses each with a line saying why.
    """
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if is_dump_name(e.name) and not e.is_dir(follow_symlinks=False))


def expand(paths: Sequence[Path]) -> Iterator[Path | FileOutcome]:
    """Files first, folders as their dump files in name order; a bad path as an outcome."""
    for path in paths:
        if path.is_dir():  # a folder named on the command line may be a link the operator chose
            files = dump_files(path)
            if not files:
                yield FileOutcome(path, error=InputError(f"{path}: folder has no dump files; add .txt dumps to it"))
            yield from files
        elif os.path.lexists(path):
            yield path
        else:
            yield FileOutcome(path, error=InputError(f"{path}: no such file or folder; check the path"))


def parse_files(paths: Sequence[Path], *, settings: Settings, today: date) -> Iterator[FileOutcome]:
    """Read and parse each file; write nothing."""
    return _each(paths, settings=settings, today=today, store=None, now=None)


def ingest_files(paths: Sequence[Path], *, store: Store, settings: Settings, now: datetime) -> Iterator[FileOutcome]:
    """Parse each file and store it: the seen-set learns which of its papers are new."""
    return _each(paths, settings=settings, today=now.astimezone().date(), store=store, now=now)


def _each(
    paths: Sequence[Path], *, settings: Settings, today: date, store: Store | None, now: datetime | None
) -> Iterator[FileOutcome]:
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, raw = ingest.load(
                item, today=today, max_bytes=settings.ingest.max_bytes, max_papers=settings.ingest.max_papers
            )
            stored = store.ingest(dump, sha256=raw.sha256, at=now) if store is not None and now is not None else None
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump, ingested=stored)
