"""Commands on dumps and papers: parse, ingest, fetch, papers, status.

Each command takes the parsed arguments and the settings and returns an exit code."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digest import pipeline
from digest.cli import show
from digest.config import Settings
from digest.errors import UsageError
from digest.store import Rates, Store
from digest.text import plural


def parse_command(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for outcome in pipeline.parse_files(args.files, settings=settings, today=date.today()):
        if outcome.error is not None:
            failed += 1
            show.error(str(outcome.error))
            continue
        dump = outcome.dump
        assert dump is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
        if args.json:
            show.json_line(show.dump_json(dump))
            continue
        day = dump.page_date.isoformat() if dump.page_date else "no page day"
        counts = f"{plural(len(dump.papers), 'paper')}, {plural(len(dump.warnings), 'warning')}"
        print(f"{dump.source}: {dump.layout}, {day}, {counts}")
        for paper in dump.papers:
            print(f"  {paper.position:>4}  {paper.title}{show.paper_line(paper)}")
        show.show_warnings(dump.source, dump.warnings)
    return 1 if failed else 0


def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    totals = {"dumps": 0, "repeats": 0, "papers": 0, "new": 0, "seen": 0, "failed": 0}
    with Store.open(settings.database.location) as store:
        outcomes = pipeline.ingest_files(args.paths, papers=store.papers, settings=settings, now=now)
        for outcome in show.progress(outcomes, total=show.count_files(args.paths)):
            if outcome.error is not None:
                totals["failed"] += 1
                aside = pipeline.set_aside(
                    outcome.path, str(outcome.error), dumps_dir=settings.ingest.dumps_dir, now=now
                )
                if args.json:
                    show.json_line(
                        {"source": str(outcome.path), "status": "error", "error": str(outcome.error), "moved": aside}
                    )
                show.error(str(outcome.error) + (f" ({aside})" if aside else ""))
                continue
            assert outcome.ingested is not None and outcome.dump is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
            record, repeat = outcome.ingested.record, outcome.ingested.repeat
            totals["dumps"] += 1
            if repeat:
                totals["repeats"] += 1
            else:
                totals["papers"] += record.papers
                totals["new"] += record.new
                totals["seen"] += record.seen
            if args.json:
                show.json_line(
                    {
                        "source": str(outcome.path),
                        "status": "repeat" if repeat else "ingested",
                        "dump": record.id,
                        "sha256": record.sha256,
                        "layout": record.layout,
                        "page_date": record.page_date,
                        "papers": 0 if repeat else record.papers,
                        "new": 0 if repeat else record.new,
                        "already_seen": 0 if repeat else record.seen,
                        "warnings": [{"line": w.line, "message": w.message} for w in outcome.dump.warnings],
                    }
                )
            elif repeat:
                when = record.ingested_at.strftime("%Y-%m-%d %H:%M UTC")
                print(f"{outcome.path.name}: already ingested on {when} (as dump {record.id}); nothing changed")
            else:
                print(show.ingested_line(outcome.path.name, record))
                show.show_warnings(str(outcome.path), outcome.dump.warnings)
    if not args.json:
        show.ingest_summary(totals, database=settings.database.shown)
    return 1 if totals["failed"] else 0


def papers_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        first_dump = None
        if args.new_in is not None:
            record = store.papers.find_dump(args.new_in)
            if record is None:
                raise UsageError(f"--new-in {args.new_in!r}: no such dump; name a file that was ingested")
            first_dump = record.id
        rows = store.papers.seen(first_dump=first_dump, limit=args.limit)
    for row in rows:
        if args.json:
            extra = {"first_dump": row.first_dump, "first_seen": row.first_seen, "sightings": row.sightings}
            show.json_line(show.paper_json(row.paper) | extra)
        else:
            print(f"{row.paper.id}  {Path(row.first_dump).name:<28}  {row.paper.title}")
    if not args.json and not rows:
        print("no papers yet; add some with: digest ingest DUMP...")
    return 0


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        status = pipeline.status(store, now=datetime.now(UTC))
    show.no_smtp_warning(
        [
            pipeline.stored_profile(run.subscriber)
            for run in status.next_runs
            if run.subscriber.status != "unsubscribed"
        ],
        settings,
    )
    if args.json:
        show.json_line(_status_json(status))
        return 0
    counts, last = status.store, status.store.last_dump
    print(f"database:    {counts.path} (schema {counts.schema_version})")
    print(f"dumps:       {counts.dumps}")
    print(f"papers:      {counts.papers} distinct, {counts.sightings} sightings")
    if last is None:
        print("last ingest: never; run: digest ingest DUMP...")
    else:
        when = last.ingested_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"last ingest: {last.source} at {when}: {plural(last.papers, 'paper')}, {last.new:,} new")
    print(f"last fetch:  {show.fetch_status(status.last_fetch)}")
    if status.next_runs:
        print("next runs:")
        for subscriber, upcoming in status.next_runs:
            state = "" if subscriber.status == "active" else f"  ({subscriber.status})"
            local = f"{upcoming:%a %Y-%m-%d %H:%M} {upcoming.tzname()}{show.utc_note(upcoming)}"
            print(f"  {subscriber.name:<16} {local}{state}")
    _rates(status)
    retries = [d for d in status.waiting if d.state == "retry"]
    waiting = plural(len(status.waiting), "delivery")
    print(f"pending:     {waiting}" + (f", {len(retries):,} waiting to retry" if retries else ""))
    if status.failures:
        print("last failures:")
        for d in status.failures:
            print(f"  #{d.id} {d.subscriber} -> {d.channel}: {d.last_error}")
    return 0


def _rates(status: pipeline.Status) -> None:
    """The last 30 days' bounce and complaint rates, each against its thresholds (a warning or an error line)."""
    rates = status.rates
    days = pipeline.RATE_DAYS
    print(
        f"email:       {plural(rates.sent, 'message')} sent in {days} days; bounces {rates.bounce_rate:.2%}, "
        f"complaints {rates.complaint_rate:.2%}"
    )
    bounces, complaints = pipeline.rate_levels(rates)
    say = {"warning": show.warn, "error": show.error}
    if complaints.level in say:
        say[complaints.level](
            f"complaint rate {rates.complaint_rate:.2%} is at or over {complaints.threshold:.1%} "
            f"({rates.complaints} of {rates.sent:,}): Gmail and Yahoo send bulk mail over 0.3% to spam; "
            "check what readers get and who is subscribed"
        )
    if bounces.level in say:
        say[bounces.level](
            f"bounce rate {rates.bounce_rate:.2%} is at or over {bounces.threshold:.0%} "
            f"({rates.bounced} of {rates.sent:,}): "
            "run 'digest bounces' so dead addresses stop being mailed"
        )


def _status_json(status: pipeline.Status) -> dict[str, Any]:
    counts, last = status.store, status.store.last_dump
    return {
        "database": counts.path,
        "schema_version": counts.schema_version,
        "dumps": counts.dumps,
        "papers": counts.papers,
        "sightings": counts.sightings,
        "last_ingest": None
        if last is None
        else {"source": last.source, "at": last.ingested_at, "papers": last.papers, "new": last.new},
        "last_fetch": None if status.last_fetch is None else show.fetch_record_json(status.last_fetch),
        "next_runs": [
            {"subscriber": s.name, "status": s.status, "local": when, "utc": when.astimezone(UTC)}
            for s, when in status.next_runs
        ],
        "email_30d": _rates_json(status.rates),
        "pending": len(status.waiting),
        "next_retry": min((d.next_try for d in status.waiting if d.next_try), default=None),
        "last_failures": [
            {"id": d.id, "subscriber": d.subscriber, "channel": d.channel, "error": d.last_error}
            for d in status.failures
        ],
    }


def fetch_command(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    today = now.date()
    days = pipeline.fetch_window(since=args.since, on=args.date, today=today, force=args.force)
    failed = 0
    from digest.fetch import Client  # noqa: PLC0415 - httpx, only for the command that calls out

    with Store.open(settings.database.location) as store, Client.from_environment(settings.fetch) as client:
        outcomes = pipeline.fetch_days(days, store=store, settings=settings, client=client, now=now)
        for outcome in show.progress(outcomes, total=len(days), doing="fetching"):
            failed += outcome.error is not None
            if args.json:
                show.json_line(show.fetch_json(outcome))
            elif outcome.error is not None:
                show.error(str(outcome.error))
            else:
                print(show.fetch_text(outcome))
    if not args.json:
        print(show.fetch_summary(days, failed=failed, database=settings.database.shown))
    return 1 if failed else 0


def _rates_json(rates: Rates) -> dict[str, Any]:
    bounces, complaints = pipeline.rate_levels(rates)
    return {
        "sent": rates.sent,
        "bounced": rates.bounced,
        "complaints": rates.complaints,
        "bounce_rate": round(rates.bounce_rate, 5),
        "complaint_rate": round(rates.complaint_rate, 5),
        "bounce_level": bounces.level,
        "complaint_level": complaints.level,
    }
