"""Dump files in: paths expanded to files, each read and parsed, and stored (the seen-set learns what is new).

A bad file becomes a ``FileOutcome`` with its error, and the rest go on. For the
daemon, ``DumpWatcher`` says which files in the dumps folder are complete and
moves a bad one into quarantine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from digest import ingest
from digest.config import Settings
from digest.errors import DigestError, InputError
from digest.models import Dump, Ingested
from digest.store import Papers


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
    return _each(paths, settings=settings, today=today, papers=None, now=None)


def ingest_files(paths: Sequence[Path], *, papers: Papers, settings: Settings, now: datetime) -> Iterator[FileOutcome]:
    """Parse each file and store it: the seen-set learns which of its papers are new."""
    return _each(paths, settings=settings, today=now.astimezone().date(), papers=papers, now=now)


def _each(
    paths: Sequence[Path], *, settings: Settings, today: date, papers: Papers | None, now: datetime | None
) -> Iterator[FileOutcome]:
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            with _boundary(item, Exception):  # reading and parsing are pure: whatever they raise is the file's
                dump, raw = ingest.load(
                    item, today=today, max_bytes=settings.ingest.max_bytes, max_papers=settings.ingest.max_papers
                )
            with _boundary(item, _UNSTORABLE):
                stored = papers.ingest(dump, sha256=raw.sha256, at=now) if papers is not None and now else None
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump, ingested=stored)


def refusal(body: bytes, *, source: str, settings: Settings, today: date) -> InputError | None:
    """Why ingest would refuse ``body`` (parsed as a file of it would be, writing nothing), or None."""
    try:
        with _boundary(Path(source), Exception):
            ingest.parse(body.decode("utf-8"), source=source, today=today, max_papers=settings.ingest.max_papers)
    except InputError as e:
        return e
    return None


# What the database driver raises for a value it cannot bind (an integer past 64 bits, text that cannot be
# encoded); a database fault (a full disk) is none of these, is not the file's, and passes through.
_UNSTORABLE = (OverflowError, ValueError)


@contextmanager
def _boundary(path: Path, caught: type[Exception] | tuple[type[Exception], ...]) -> Iterator[None]:
    """The file's boundary: what ``caught`` names becomes this file's ``InputError`` (one line, then quarantine),
    so a dump that meets something no check foresaw costs only itself, never the run, the sync or the sending."""
    try:
        yield
    except DigestError:
        raise
    except caught as e:
        raise InputError(f"{path}: cannot be read as a dump ({type(e).__name__}: {_brief(e)}); fix or remove it") from e


def _brief(error: BaseException) -> str:
    said = " ".join(str(error).split())
    return said[:120] + "…" if len(said) > 120 else said or "no detail"


@dataclass
class DumpWatcher:
    """Finds dumps that are complete: size and mtime unchanged since the previous poll.

    A file already older than ``settle_seconds`` when first seen (there before
    the daemon started) counts as complete at once. Dot-files, ``*.tmp`` and
    the quarantine folder are ignored.
    """

    folder: Path
    settle_seconds: float
    _seen: dict[Path, tuple[int, float]] = field(default_factory=dict)
    _taken: dict[Path, tuple[int, float]] = field(default_factory=dict)

    def files(self) -> list[Path]:
        return dump_files(self.folder) if self.folder.is_dir() else []

    def ready(self, now: datetime) -> list[Path]:
        found: list[Path] = []
        current: dict[Path, tuple[int, float]] = {}
        for path in self.files():
            stat = path.lstat()  # a link or a FIFO is not followed; reading it refuses it, into quarantine
            mark = (stat.st_size, stat.st_mtime)
            current[path] = mark
            if self._taken.get(path) == mark:
                continue
            settled = now.timestamp() - stat.st_mtime >= self.settle_seconds
            if self._seen.get(path) == mark or settled:
                found.append(path)
        self._seen = current
        return found

    def take(self, path: Path) -> None:
        if os.path.lexists(path):
            stat = path.lstat()
            self._taken[path] = (stat.st_size, stat.st_mtime)


def set_aside(path: Path, reason: str, *, dumps_dir: Path, now: datetime) -> str | None:
    """Move a bad dump of the dumps folder into its ``quarantine/``, so nothing meets it again; says where (or
    why not). A file elsewhere (named on the command line) is the operator's and stays: None."""
    if not os.path.lexists(path) or path.is_dir() or path.absolute().parent != dumps_dir.absolute():
        return None
    try:
        moved = quarantine(dumps_dir, path, reason, now=now)
    except OSError as e:
        return f"could not move it to quarantine/ ({e.strerror or e}); move or delete it by hand"
    return f"moved to {moved}"


def quarantine(folder: Path, path: Path, reason: str, *, now: datetime) -> Path:
    """Move a bad file into ``folder/quarantine/`` (a free name there) with a ``.error`` note saying why."""
    target = quarantine_target(folder, path.name)
    shutil.move(path, target)
    note_why(target, reason, now=now)
    return target


def quarantine_target(folder: Path, name: str) -> Path:
    """A free path for ``name`` in ``folder/quarantine/`` (made if missing): ``name``, ``name.1``, …"""
    target_dir = folder / "quarantine"
    target_dir.mkdir(exist_ok=True)
    target = target_dir / name
    number = 1
    while target.exists():
        target = target_dir / f"{name}.{number}"
        number += 1
    return target


def note_why(target: Path, reason: str, *, now: datetime) -> None:
    """The note beside a quarantined file: when, and why."""
    target.with_name(target.name + ".error").write_text(f"{now:%Y-%m-%dT%H:%M:%SZ} {reason}\n", encoding="utf-8")
