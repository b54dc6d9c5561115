"""Fetched days in: each day's list from Hugging Face written as a dump (``hf-YYYY-MM-DD.json``) and ingested.

A day fetched again with the same content adds nothing: the first page is asked
for with the stored ETag (``If-None-Match``), and a list whose bytes hash as
before is not written again. An empty list is "no papers listed", not an
error; an answer that is not a JSON list, or a list ingest refuses, goes into
the dumps folder's ``quarantine/`` like any bad dump.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from digest import atomic
from digest.config import Settings
from digest.errors import DigestError, FetchError, UsageError
from digest.fetch import Client, NotJSONError
from digest.models import FetchRecord
from digest.pipeline.intake import FileOutcome, ingest_files, note_why, quarantine, quarantine_target, refusal
from digest.store import Store


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What became of one day: its record, and the dump written and ingested (only when new)."""

    record: FetchRecord
    file: FileOutcome | None = None
    error: DigestError | None = None


def days_between(since: date, until: date) -> list[date]:
    """Every day from ``since`` to ``until``, both included (none when ``since`` is later)."""
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


FIRST_DAY = date(2020, 1, 1)  # before Hugging Face's Daily Papers began
MAX_SINCE_DAYS = 62  # how far back --since reaches without --force: one request and one file a day


def fetch_window(*, since: date | None, on: date | None, today: date, force: bool = False) -> list[date]:
    """The days ``digest fetch`` asks for: ``on`` alone, every day from ``since`` to ``today``, or today.

    Raises ``UsageError`` for a day before 2020 or after tomorrow (UTC; tomorrow
    has begun in zones east of it), and for ``since`` more than ``MAX_SINCE_DAYS``
    back unless ``force``.
    """
    first = since or on or today
    if first < FIRST_DAY:
        raise UsageError(f"{first}: before {FIRST_DAY}, when Daily Papers began; give a later date")
    if first > today + timedelta(days=1):
        raise UsageError(f"{first} is in the future; Hugging Face lists days up to today ({today}, UTC)")
    if since is None:
        return [first]
    if (today - since).days > MAX_SINCE_DAYS and not force:
        raise UsageError(
            f"--since {since} is {(today - since).days} days back, over {MAX_SINCE_DAYS} "
            "(one request and one file a day); add --force if you mean it"
        )
    return days_between(since, today)


def fetch_days(
    days: Sequence[date], *, store: Store, settings: Settings, client: Client, now: datetime
) -> Iterator[FetchOutcome]:
    """Fetch, write and ingest each day in turn; a failed day is an outcome, and the rest go on."""
    for day in days:
        yield fetch_day(day, store=store, settings=settings, client=client, now=now)


def fetch_day(day: date, *, store: Store, settings: Settings, client: Client, now: datetime) -> FetchOutcome:
    known = store.fetches.get(day)
    try:
        got = client.day(day, etag=known.etag if known and known.outcome in ("new", "unchanged") else None)
    except NotJSONError as e:
        kept = _quarantine(settings.ingest.dumps_dir, day, e.body, str(e), now=now)
        return _done(store, FetchRecord(day, "failed", 0, now, detail=f"{e} ({kept.name})"), error=e)
    except FetchError as e:
        return _done(store, FetchRecord(day, "failed", 0, now, detail=str(e)), error=e)
    if got.items is None:  # 304: as the last time
        assert known is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
        return _done(store, FetchRecord(day, "unchanged", known.items, now, known.etag, known.sha256, known.detail))
    if not got.items:
        return _done(store, FetchRecord(day, "empty", 0, now, got.etag))
    sha256 = hashlib.sha256(got.body).hexdigest()
    if known is not None and known.sha256 == sha256:
        return _done(store, FetchRecord(day, "unchanged", len(got.items), now, got.etag, sha256, known.detail))
    name = f"hf-{day.isoformat()}.json"
    refused = refusal(got.body, source=name, settings=settings, today=now.date())
    if refused is not None:  # checked before anything reaches the dumps folder: a bad answer goes to quarantine only
        kept = _quarantine(settings.ingest.dumps_dir, day, got.body, str(refused), now=now)
        record = FetchRecord(day, "failed", len(got.items), now, detail=f"{refused} ({kept.name})")
        return _done(store, record, error=refused)
    path = settings.ingest.dumps_dir / name
    atomic.write(path, got.body)  # hidden and *.tmp until whole: the folder scan never takes half a dump
    [outcome] = ingest_files([path], papers=store.papers, settings=settings, now=now)
    if outcome.error is not None:
        kept = quarantine(settings.ingest.dumps_dir, path, str(outcome.error), now=now)
        record = FetchRecord(day, "failed", len(got.items), now, detail=f"{outcome.error} ({kept.name})")
        return _done(store, record, file=outcome, error=outcome.error)
    return _done(store, FetchRecord(day, "new", len(got.items), now, got.etag, sha256, path.name), file=outcome)


def _done(
    store: Store, record: FetchRecord, *, file: FileOutcome | None = None, error: DigestError | None = None
) -> FetchOutcome:
    store.fetches.save(record)
    return FetchOutcome(record, file, error)


def _quarantine(folder: Path, day: date, body: bytes, reason: str, *, now: datetime) -> Path:
    """Keep an answer that is not a list in ``quarantine/`` with a note saying why (never in the dumps folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = quarantine_target(folder, f"hf-{day.isoformat()}.json")
    atomic.write(target, body)
    note_why(target, reason, now=now)
    return target
