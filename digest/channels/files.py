"""File channels: the outbox (a Maildir of .eml files, plus Markdown copies) and Atom feeds.

The outbox is the embedded default: with no SMTP server configured, email goes
here. File names are fixed per (digest, channel), and every file is written to
a temporary name and renamed into place, so a retry after a crash rewrites the
same file instead of adding a second copy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

from digest import atomic
from digest.channels.base import Job, OneAtATime, Takes
from digest.config import Settings
from digest.errors import TransientError
from digest.render.atom import atom_feed


class OutboxChannel(OneAtATime):
    """outbox/NAME/new/EDITION.ID.eml (Maildir: tmp/, new/, cur/) and outbox/NAME/digests/EDITION.md."""

    kind: ClassVar[str] = "outbox"
    takes: ClassVar[Takes] = "email"
    markdown: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self._root = settings.delivery.outbox_dir

    def paths(self, job: Job) -> tuple[Path, Path]:
        folder = self._root / job.delivery.subscriber
        tag = hashlib.sha256(job.delivery.channel.encode()).hexdigest()[:8]
        name = f"{job.delivery.edition.isoformat()}.{job.digest.id}.{tag}"
        return folder / "new" / f"{name}.eml", folder / "digests" / f"{job.delivery.edition.isoformat()}.md"

    def send(self, job: Job) -> None:
        assert job.eml is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
        eml, markdown = self.paths(job)
        try:
            for sub in ("tmp", "new", "cur"):
                (eml.parent.parent / sub).mkdir(parents=True, exist_ok=True)
            atomic.write(eml, job.eml)
            atomic.write(markdown, job.digest.markdown.encode("utf-8"))
        except OSError as e:
            raise TransientError(f"outbox: cannot write {eml.parent} ({e.strerror}); check the folder") from e


def write_notice(settings: Settings, name: str, message: bytes) -> Path:
    """A message outside any digest (a sign-up's confirmation) into outbox/_notices/new/ when there is no SMTP."""
    path = settings.delivery.outbox_dir / "_notices" / "new" / f"{name}.eml"
    try:
        atomic.write(path, message)
    except OSError as e:
        raise TransientError(f"outbox: cannot write {path.parent} ({e.strerror}); check the folder") from e
    return path


class AtomChannel(OneAtATime):
    """outbox/feeds/NAME.atom: the subscriber's latest digests, for a feed reader (``digest serve`` serves it)."""

    kind: ClassVar[str] = "atom"
    takes: ClassVar[Takes] = "history"

    def __init__(self, settings: Settings) -> None:
        self._root = settings.delivery.outbox_dir / "feeds"

    def path(self, name: str) -> Path:
        return self._root / f"{name}.atom"

    def send(self, job: Job) -> None:
        name = job.delivery.subscriber
        self_url = job.delivery.payload or None  # the feed's own signed address, frozen with the digest
        feed = atom_feed(name, job.history, job.related, self_url=self_url, updated=job.digest.created_at)
        try:
            atomic.write(self.path(name), feed)
        except OSError as e:
            raise TransientError(f"atom: cannot write {self.path(name)} ({e.strerror}); check the folder") from e
