"""Commands on the database: backup, restore, migrate-db, prune.

Each command takes the parsed arguments and the settings and returns an exit code."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from digest import pipeline, schedule
from digest.cli import show
from digest.config import Settings
from digest.errors import UsageError
from digest.store import SCHEMA_VERSION, Store, migrate_to_postgres, restore
from digest.text import plural


def backup_command(args: argparse.Namespace, settings: Settings) -> int:
    database = _sqlite_file(settings, "back up", "pg_dump")
    if not database.is_file():
        raise UsageError(f"{database}: no database yet, so nothing to back up; check database.path")
    target = args.path
    if target.is_dir():
        target = target / f"{database.stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{database.suffix or '.sqlite3'}"
    with Store.open(database) as store:
        copied = store.backup(target)
    if args.json:
        show.json_line(
            {"database": str(database), "backup": str(copied.path), "bytes": copied.size,
             "seconds": copied.seconds, "schema": copied.schema, "integrity": "ok"}
        )  # fmt: skip
        return 0
    size = f"{copied.size / 1_048_576:.1f} MB"
    print(f"backed up {database} to {copied.path}: {size} in {copied.seconds:.1f} s (integrity ok)")
    return 0


def restore_command(args: argparse.Namespace, settings: Settings) -> int:
    database = _sqlite_file(settings, "restore", "pg_restore")
    with schedule.exclusive(database):
        done = restore(args.path, database, at=datetime.now(UTC))
    kept = f"; the previous file is kept as {done.aside}" if done.aside else ""
    print(f"restored {database} from {done.source} (schema {done.schema}){kept}")
    if done.schema < SCHEMA_VERSION:
        print(f"it is upgraded to schema {SCHEMA_VERSION} when next opened, with a copy taken first")
    print("restart 'digest serve' if it is running: it still reads the file it opened")
    return 0


def _sqlite_file(settings: Settings, verb: str, tool: str) -> Path:
    """The SQLite file these commands copy; on PostgreSQL, the server's own tool is the way."""
    location = settings.database.location
    if isinstance(location, str):
        raise UsageError(f"{settings.database.shown}: digest can {verb} only a SQLite file; on PostgreSQL use {tool}")
    return location


def migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    source = _sqlite_file(settings, "migrate", "pg_dump and pg_restore")
    url: str = args.to
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"--to {url!r}: name a PostgreSQL database, e.g. postgresql://digest@db:5432/digest")
    if urlsplit(url).password is not None:
        raise UsageError("--to: leave the password out of the URL (others can read a command line); set PGPASSWORD")
    if not source.is_file():
        raise UsageError(f"{source}: no database yet, so nothing to migrate; check database.path")
    started = time.monotonic()
    with schedule.exclusive(source):
        copied = migrate_to_postgres(source, url, progress=_progress if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    seconds, rows = time.monotonic() - started, sum(c.rows for c in copied)
    if args.json:
        each = {c.table: {"rows": c.rows, "checksum": c.sha256} for c in copied}
        show.json_line({"from": str(source), "to": url, "rows": rows, "seconds": round(seconds, 2), "tables": each})
        return 0
    tables = [(c.table, c.rows, c.sha256) for c in copied]
    print(show.migrated(tables, source=str(source), target=url, seconds=seconds))
    return 0


def _progress(table: str, rows: int) -> None:
    print(f"\rcopying {table}: {rows:,} rows", end="", file=sys.stderr, flush=True)


def prune_command(args: argparse.Namespace, settings: Settings) -> int:
    days, history = settings.retention.bodies_days, settings.retention.history_days
    with schedule.exclusive(settings.database.location), Store.open(settings.database.location) as store:
        done = pipeline.prune(store, settings, now=datetime.now(UTC), dry_run=args.dry_run)
    if args.json:
        show.json_line(dataclasses.asdict(done) | {"bodies_days": days, "history_days": history})
        return 0
    verb = "would drop" if done.dry_run else "dropped"
    size = f"{done.bytes / 1_048_576:.1f} MB"
    print(f"{verb} the bodies of {plural(done.bodies, 'digest')} delivered over {days} days ago ({size})")
    forgotten = [
        plural(done.digests, "digest"), plural(done.sightings, "sighting"), plural(done.fetches, "fetch record"),
        plural(done.votes, "old vote"), plural(done.bounces, "bounce record"),
    ]  # fmt: skip
    print(f"{'would forget' if done.dry_run else 'forgot'} {', '.join(forgotten)} (over {history} days old)")
    if done.signups:
        signups = plural(done.signups, "expired or long-confirmed sign-up")
        print(f"{'would purge' if done.dry_run else 'purged'} {signups}")
    if done.reclaimed:
        print(f"gave {done.reclaimed / 1_048_576:.1f} MB back to the file system")
    return 0
