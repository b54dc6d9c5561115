"""The ``digest`` command. Catches ``DigestError`` once: one line on stderr, an exit code.

Exit codes: 0 success, 1 bad input (some file, profile or config could not be
used; the rest went on), 2 bad usage, 130 interrupted. ``--verbose`` adds the
traceback to an error.

Machine output (``--json``) is a stable interface: one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from digest import __version__, cadence, channels, config, ingest, pipeline, profiles, render, schedule
from digest.config import Settings
from digest.errors import DeliveryError, DigestError, InputError, UsageError
from digest.models import WEEKDAYS, Dump, DumpRecord, Paper, ParseWarning, Profile, Ranked
from digest.store import Store

# How many warnings per file the human output shows before summing up the rest.
SHOWN_WARNINGS = 20
# From this many files on, ingest draws a progress bar (on a terminal only).
PROGRESS_FROM = 5

_err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- output helpers -------------------------------------------------------


def _json_line(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _paper_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "published": paper.published,
        "upvotes": paper.upvotes,
        "position": paper.position,
    }


def _dump_json(dump: Dump) -> dict[str, Any]:
    return {
        "source": dump.source,
        "layout": dump.layout,
        "page_date": dump.page_date,
        "papers": [_paper_json(p) for p in dump.papers],
        "warnings": [{"line": w.line, "message": w.message} for w in dump.warnings],
    }


def _error(message: str) -> None:
    _err.print(f"digest: error: {message}", markup=False)


def _warn(message: str) -> None:
    _err.print(f"digest: warning: {message}", markup=False)


def _show_warnings(source: str, warnings: Sequence[ParseWarning]) -> None:
    for warning in warnings[:SHOWN_WARNINGS]:
        _err.print(f"{source}:{warning.line}: warning: {warning.message}", markup=False)
    if len(warnings) > SHOWN_WARNINGS:
        more = len(warnings) - SHOWN_WARNINGS
        _err.print(f"{source}: … and {more} more warnings (digest parse {source} --json lists them all)", markup=False)


def _meta(paper: Paper) -> str:
    parts = []
    if paper.authors_count is not None:
        parts.append(f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}")
    if paper.organization:
        parts.append(paper.organization)
    if paper.published:
        parts.append(paper.published.isoformat())
    if paper.upvotes is not None:
        parts.append(f"▲{paper.upvotes}")
    if paper.abstract is None:
        parts.append("no abstract")
    return f"  [{' · '.join(parts)}]" if parts else ""


def _progress(items: Iterable[pipeline.FileOutcome], *, total: int) -> Iterator[pipeline.FileOutcome]:
    """Yield the items, drawing a progress bar on a terminal when there are many."""
    if total < PROGRESS_FROM or not _err.is_terminal:
        yield from items
        return
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=total)
        for item in items:
            yield item
            bar.advance(task)


def _count_files(paths: Sequence[Path]) -> int:
    return sum(1 for _ in pipeline.expand(paths))


def _day(record: DumpRecord) -> str:
    return record.page_date.isoformat() if record.page_date else "no page day"


# --- commands ---------------------------------------------------------------
# Each command takes the parsed arguments and the settings and returns an exit code.


def parse_command(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for outcome in pipeline.parse_files(args.files, settings=settings, today=date.today()):
        if outcome.error is not None:
            failed += 1
            _error(str(outcome.error))
            continue
        dump = outcome.dump
        assert dump is not None
        if args.json:
            _json_line(_dump_json(dump))
            continue
        day = dump.page_date.isoformat() if dump.page_date else "no page day"
        print(f"{dump.source}: {dump.layout}, {day}, {len(dump.papers)} papers, {len(dump.warnings)} warnings")
        for paper in dump.papers:
            print(f"  {paper.position:>4}  {paper.title}{_meta(paper)}")
        _show_warnings(dump.source, dump.warnings)
    return 1 if failed else 0


def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    totals = {"dumps": 0, "repeats": 0, "papers": 0, "new": 0, "seen": 0, "failed": 0}
    with Store.open(settings.database.path) as store:
        outcomes = pipeline.ingest_files(args.paths, store=store, settings=settings, now=now)
        for outcome in _progress(outcomes, total=_count_files(args.paths)):
            if outcome.error is not None:
                totals["failed"] += 1
                if args.json:
                    _json_line({"source": str(outcome.path), "status": "error", "error": str(outcome.error)})
                _error(str(outcome.error))
                continue
            assert outcome.ingested is not None and outcome.dump is not None
            record, repeat = outcome.ingested.record, outcome.ingested.repeat
            totals["dumps"] += 1
            if repeat:
                totals["repeats"] += 1
            else:
                totals["papers"] += record.papers
                totals["new"] += record.new
                totals["seen"] += record.seen
            if args.json:
                _json_line(
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
                print(
                    f"{outcome.path.name}: {record.layout}, {_day(record)}: "
                    f"{record.papers} papers, {record.new} new, {record.seen} already seen"
                )
                _show_warnings(str(outcome.path), outcome.dump.warnings)
    if not args.json:
        _ingest_summary(totals, database=settings.database.path)
    return 1 if totals["failed"] else 0


def _ingest_summary(totals: dict[str, int], *, database: Path) -> None:
    fresh = totals["dumps"] - totals["repeats"]
    parts = [f"{fresh} dump{'s' if fresh != 1 else ''} ingested"]
    if totals["repeats"]:
        parts.append(f"{totals['repeats']} ingested before (unchanged)")
    if totals["failed"]:
        parts.append(f"{totals['failed']} failed")
    print(
        f"total: {', '.join(parts)}; {totals['papers']} papers, {totals['new']} new, "
        f"{totals['seen']} already seen -> {database}"
    )
    if fresh:
        print("list the new papers of a dump: digest papers --new-in FILE_NAME")


def papers_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        first_dump = None
        if args.new_in is not None:
            record = store.find_dump(args.new_in)
            if record is None:
                raise UsageError(f"--new-in {args.new_in!r}: no such dump; name a file that was ingested")
            first_dump = record.id
        rows = store.papers(first_dump=first_dump, limit=args.limit)
    for row in rows:
        if args.json:
            extra = {"first_dump": row.first_dump, "first_seen": row.first_seen, "sightings": row.sightings}
            _json_line(_paper_json(row.paper) | extra)
        else:
            print(f"{row.paper.id}  {Path(row.first_dump).name:<28}  {row.paper.title}")
    if not args.json and not rows:
        print("no papers yet; add some with: digest ingest DUMP...")
    return 0


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    now = _clock()
    with Store.open(settings.database.path) as store:
        status = store.status()
        waiting = store.deliveries(states=("pending", "sending", "retry"))
        failures = store.deliveries(states=("failed",), limit=5)
        plans = []
        for subscriber in store.subscribers():
            profile = pipeline.stored_profile(subscriber)
            upcoming = cadence.next_fire(profile, now)
            plans.append((subscriber, upcoming))
    last = status.last_dump
    if args.json:
        _json_line(
            {
                "database": status.path,
                "schema_version": status.schema_version,
                "dumps": status.dumps,
                "papers": status.papers,
                "sightings": status.sightings,
                "last_ingest": None
                if last is None
                else {"source": last.source, "at": last.ingested_at, "papers": last.papers, "new": last.new},
                "next_runs": [
                    {"subscriber": s.name, "status": s.status, "local": when, "utc": when.astimezone(UTC)}
                    for s, when in plans
                ],
                "pending": len(waiting),
                "next_retry": min((d.next_try for d in waiting if d.next_try), default=None),
                "last_failures": [
                    {"id": d.id, "subscriber": d.subscriber, "channel": d.channel, "error": d.last_error}
                    for d in failures
                ],
            }
        )
        return 0
    print(f"database:    {status.path} (schema {status.schema_version})")
    print(f"dumps:       {status.dumps}")
    print(f"papers:      {status.papers} distinct, {status.sightings} sightings")
    if last is None:
        print("last ingest: never; run: digest ingest DUMP...")
    else:
        when = last.ingested_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"last ingest: {last.source} at {when}: {last.papers} papers, {last.new} new")
    if plans:
        print("next runs:")
        for subscriber, upcoming in plans:
            state = "" if subscriber.status == "active" else f"  ({subscriber.status})"
            print(
                f"  {subscriber.name:<16} {upcoming:%a %Y-%m-%d %H:%M} {upcoming.tzname()} "
                f"({upcoming.astimezone(UTC):%H:%M} UTC){state}"
            )
    retries = [d for d in waiting if d.state == "retry"]
    print(f"pending:     {len(waiting)} deliveries" + (f", {len(retries)} waiting to retry" if retries else ""))
    if failures:
        print("last failures:")
        for d in failures:
            print(f"  #{d.id} {d.subscriber} -> {d.channel}: {d.last_error}")
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    daemon = schedule.Daemon(settings, log=schedule.EventLog(fmt=args.log_format))
    return daemon.once() if args.once else daemon.forever()


# --- subscribers and ranking ---------------------------------------------------


def _schedule(profile: Profile) -> str:
    when = profile.send_at.strftime("%H:%M")
    if profile.frequency == "weekly":
        cadence = f"weekly on {WEEKDAYS[profile.day or 0].capitalize()}"
    else:
        cadence = profile.frequency
    today = datetime.now(ZoneInfo(profile.timezone)).date()
    local = datetime.combine(today, profile.send_at, tzinfo=ZoneInfo(profile.timezone))
    utc = "" if profile.timezone == "UTC" else f" ({local.astimezone(UTC):%H:%M} UTC)"
    return f"{cadence} at {when} {profile.timezone}{utc}"


def _channels(profile: Profile) -> str:
    parts = []
    for channel in profile.delivery:
        if channel.kind == "email":
            parts.append(f"email {channel.address or profile.email}")
        elif channel.url_env:
            parts.append(f"{channel.kind} (URL from ${channel.url_env})")
        else:
            parts.append(channel.kind)
    return ", ".join(parts)


def _keywords(profile: Profile) -> str:
    terms = [term if weight == 1 else f"{term} ×{weight:g}" for term, weight in profile.keywords]
    return ", ".join(terms) or "none"


def _describe(profile: Profile, *, archive_titles: set[str] | None = None) -> list[str]:
    lines = [
        f"  when:      {_schedule(profile)}",
        f"  what:      up to {profile.max_items} papers scoring at least {profile.min_score:g}"
        + (f", plus {profile.trending} trending" if profile.trending else "")
        + ("; a short notice on empty days" if profile.empty_day == "notice" else "; nothing on empty days"),
        f"  where:     {_channels(profile)}",
        f"  keywords:  {_keywords(profile)}",
    ]
    if profile.exclude:
        lines.append(f"  excludes:  {', '.join(profile.exclude)}")
    if profile.seeds:
        known = ""
        if archive_titles is not None:
            found = sum(ingest.normalise_title(seed) in archive_titles for seed in profile.seeds)
            known = f" ({found} found in the archive; the others count once ingested)"
        lines.append(f"  seeds:     {len(profile.seeds)} paper{'s' if len(profile.seeds) != 1 else ''}{known}")
    return lines


def _sync(store: Store, settings: Settings) -> int:
    """Sync the subscribers folder; report what changed and what is broken. Returns the error count."""
    report = pipeline.sync_subscribers(store, settings.subscribers.dir, at=datetime.now(UTC))
    for name, outcome in report.changes.items():
        _err.print(f"subscribers: {name} {outcome} (from {report.folder})", markup=False)
    for name in report.removed:
        _err.print(f"subscribers: {name} unsubscribed (its file left {report.folder})", markup=False)
    for error in report.errors:
        _error(f"{error} (the last good version stays in force)")
    return len(report.errors)


def _archive_titles(store: Store) -> set[str]:
    return {p.norm_title for p in store.archive()}


def subscribe_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        profile, outcome = pipeline.subscribe(store, args.profile, at=datetime.now(UTC))
        titles = _archive_titles(store)
    verb = {"unchanged": "already subscribed, unchanged"}.get(outcome, outcome)
    print(f"{profile.name}: {verb}")
    print("\n".join(_describe(profile, archive_titles=titles)))
    return 0


def unsubscribe_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        pipeline.set_state(store, args.name, "unsubscribed", at=datetime.now(UTC))
    print(f"{args.name}: unsubscribed; their digest history is kept, so subscribing again sends no repeats")
    return 0


def pause_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.until is not None and args.until <= date.today():
        raise UsageError(f"--until {args.until}: not in the future; give a later date")
    with Store.open(settings.database.path) as store:
        pipeline.set_state(store, args.name, "paused", until=args.until, at=datetime.now(UTC))
    until = f" until {args.until} (digests resume on {args.until + timedelta(days=1)})" if args.until else ""
    print(f"{args.name}: paused{until}; 'digest resume {args.name}' ends it")
    return 0


def resume_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        pipeline.set_state(store, args.name, "active", at=datetime.now(UTC))
    print(f"{args.name}: active")
    return 0


def subscribers_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        broken = _sync(store, settings)
        rows = store.subscribers(include_unsubscribed=args.all)
        profiles_ = [(row, pipeline.stored_profile(row)) for row in rows]
    if args.json:
        for row, profile in profiles_:
            _json_line(
                {
                    "name": row.name,
                    "status": row.status,
                    "paused_until": row.paused_until,
                    "source": row.source,
                    "schedule": _schedule(profile),
                    "channels": [c.kind for c in profile.delivery],
                    "keywords": dict(profile.keywords),
                    "seeds": len(profile.seeds),
                    "updated_at": row.updated_at,
                }
            )
        return 1 if broken else 0
    if not profiles_:
        print(f"no subscribers yet: 'digest subscribe PROFILE.toml', or put profiles in {settings.subscribers.dir}/")
        return 1 if broken else 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "status", "schedule", "channels", "keywords"):
        table.add_column(column, overflow="fold")
    for row, profile in profiles_:
        status = row.status + (f" until {row.paused_until}" if row.paused_until else "")
        table.add_row(profile.name, status, _schedule(profile), _channels(profile), _keywords(profile))
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))
    return 1 if broken else 0


def check_command(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0

    def bad(path: Path, error: DigestError) -> None:
        nonlocal failed
        failed += 1
        _error(str(error))

    for profile, _ in profiles.load_many(list(args.profiles), on_error=bad):
        print(f"{profile.source}: ok ({profile.name})")
        print("\n".join(_describe(profile)))
        failed += _check_webhooks(profile, settings)
    return 1 if failed else 0


def _check_webhooks(profile: Profile, settings: Settings) -> int:
    """Where each webhook channel would post, resolved and checked now; returns how many may not."""
    refused = 0
    for channel in profile.delivery:
        if not channel.url_env:
            continue
        name = channels.channel_name(channel.kind, channel.url_env)
        try:
            target = pipeline.webhook_target(channel.kind, channel.url_env, settings)
        except DeliveryError as e:
            refused += 1
            _error(str(e))
            continue
        if target is None:
            _warn(f"{name}: {channels.UNSET}")
        else:
            print(f"  webhooks:  {name}: {target.url.scheme} to {', '.join(target.addresses)}")
    return refused


def _why_json(item: Ranked) -> list[dict[str, Any]]:
    return [
        {"kind": r.kind, "label": r.label, "score": r.score, "where": list(r.where), "detail": r.detail}
        for r in item.why
    ]


def rank_command(args: argparse.Namespace, settings: Settings) -> int:
    profile, _ = profiles.load(args.profile)
    with Store.open(settings.database.path) as store:
        source: str | None
        if args.dump is not None:
            dump, _ = ingest.load(
                args.dump,
                today=date.today(),
                max_bytes=settings.ingest.max_bytes,
                max_papers=settings.ingest.max_papers,
            )
            papers, source = list(dump.papers), str(args.dump)
        else:
            papers, source = pipeline.new_papers(store)
            if source is None:
                raise InputError("no dumps ingested yet; run 'digest ingest DUMP...' first, or pass --dump FILE")
        ranked = pipeline.rank_for(store, profile, papers, settings=settings, keep_all=args.all)
    if args.json:
        rows = [{"id": r.paper.id, "title": r.paper.title, "score": r.score, "why": _why_json(r)} for r in ranked]
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    shown = "all" if args.all else f"top {len(ranked)}"
    print(f"{profile.name}: {shown} of {len(papers)} papers in {source}")
    _print_ranked(ranked)
    return 0


def _print_ranked(ranked: Sequence[Ranked]) -> None:
    for item in ranked:
        print(f"{item.rank:>4}. {item.score:5.2f}  {item.paper.title}")
        reasons = [render.describe(r) for r in item.why if r.kind != "trending"] or [render.describe(item.why[0])]
        print(f"             {'; '.join(reasons)}")


def preview_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        broken = _sync(store, settings)
        view = pipeline.preview(store, args.name, settings=settings, now=_clock())
    if args.format != "terminal":
        digest = pipeline.as_digest(view, now=datetime.now(UTC))
        output = pipeline.renderer(settings).render(digest, args.format)
        if args.out is None:
            sys.stdout.write(output)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(output, encoding="utf-8")
            _err.print(f"{args.name}: {args.format} written to {args.out}", markup=False)
        return 1 if broken else 0
    profile = view.profile
    print(f"{profile.name}: {_schedule(profile)}, to {_channels(profile)}")
    since = view.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{len(view.items)} papers for {profile.name} out of {view.candidates} new since {since}\n")
    if view.items:
        _print_ranked(view.items)
    else:
        notice = (
            "a short 'nothing matched today' notice" if profile.empty_day == "notice" else "nothing (empty_day = skip)"
        )
        print(f"  nothing scores {profile.min_score:g} or more today; they would get {notice}")
    if view.trending:
        print("\ntrending today")
        for paper in view.trending:
            votes = f"  ({paper.upvotes} upvotes)" if paper.upvotes else ""
            print(f"   -  {paper.title}{votes}")
    return 1 if broken else 0


# --- delivery -------------------------------------------------------------------


def _clock() -> datetime:
    return datetime.now(UTC)


def send_command(args: argparse.Namespace, settings: Settings) -> int:
    names = {args.subscriber} if args.subscriber else None
    with schedule.exclusive(settings.database.path), Store.open(settings.database.path) as store:
        if args.subscriber:
            pipeline.find_subscriber(store, args.subscriber)
        report = pipeline.send(store, settings, clock=_clock, names=names, dry_run=args.dry_run)
    for error in report.profile_errors:
        _error(f"{error} (the last good version stays in force)")
    _send_summary(report, settings=settings, dry_run=args.dry_run)
    return 1 if report.failed or report.profile_errors else 0


def _send_summary(report: pipeline.SendReport, *, settings: Settings, dry_run: bool) -> None:
    verb = "would make" if dry_run else "made"
    made = ", ".join(
        f"{name} {count} paper{'s' if count != 1 else ''}" if count else f"{name} a 'nothing matched' notice"
        for name, _, count in report.made
    )
    print(f"digests: {verb} {len(report.made)}" + (f" ({made})" if made else ""))
    if report.skipped:
        print(f"skipped: {', '.join(name for name, _ in report.skipped)} (nothing matched; empty_day = skip)")
    if dry_run:
        for name, channel in report.planned:
            print(f"would deliver: {name} -> {channel}")
        print("dry run: nothing was written or sent")
        return
    print(f"sent:    {len(report.sent)} message{'s' if len(report.sent) != 1 else ''}")
    for delivery, reason, when in report.retries:
        when_text = f"{when:%Y-%m-%d %H:%M:%S} UTC"
        print(f"retry:   #{delivery.id} {delivery.subscriber} -> {delivery.channel}: {reason}; next try {when_text}")
    for delivery, reason in report.failed:
        print(f"FAILED:  #{delivery.id} {delivery.subscriber} -> {delivery.channel}: {reason}")
    if report.failed:
        print("after fixing the cause: digest retry ID (or --all)")
    if any(d.kind in ("outbox", "atom") for d in report.sent):
        box = settings.delivery.outbox_dir
        print(f"look in: {box}/NAME/new/*.eml (Maildir), {box}/NAME/digests/*.md, {box}/feeds/*.atom")


def deliveries_command(args: argparse.Namespace, settings: Settings) -> int:
    states = ("failed",) if args.failed else None
    with Store.open(settings.database.path) as store:
        rows = store.deliveries(states=states, limit=args.limit)
    for row in rows:
        if args.json:
            _json_line(
                {
                    "id": row.id,
                    "subscriber": row.subscriber,
                    "edition": row.edition,
                    "channel": row.channel,
                    "state": row.state,
                    "attempts": row.attempts,
                    "message_id": row.message_id,
                    "next_try": row.next_try,
                    "sent_at": row.sent_at,
                    "error": row.last_error,
                }
            )
            continue
        when = row.sent_at or row.next_try or row.updated_at
        note = f"  {row.last_error}" if row.last_error and row.state != "sent" else ""
        print(
            f"#{row.id:<5} {row.state:<8} {row.edition}  {row.subscriber:<14} {row.channel:<32} "
            f"{row.attempts} tr{'y' if row.attempts == 1 else 'ies'}  {when:%Y-%m-%d %H:%M}{note}"
        )
    if not rows and not args.json:
        print("no failed deliveries" if args.failed else "no deliveries yet; 'digest send' makes and sends digests")
    return 0


def retry_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.id is None and not args.all:
        raise UsageError("say which: digest retry ID, or digest retry --all")
    with Store.open(settings.database.path) as store:
        if args.id is not None and store.delivery(args.id) is None:
            raise UsageError(f"no delivery #{args.id}; 'digest deliveries' lists them")
        count = store.requeue(None if args.all else args.id, at=_clock())
    if args.id is not None and count == 0:
        print(f"#{args.id} is not failed or waiting; nothing to do")
        return 0
    print(f"requeued {count} deliver{'y' if count == 1 else 'ies'}; 'digest send' delivers them now")
    return 0


# --- argument parsing ---------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (exit 2, one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_Command = Callable[[argparse.Namespace, Settings], int]

_EPILOG = """\
examples:
  digest ingest examples/dumps          ingest every dump in a folder, report what is new
  digest parse page.txt --json          parse one dump, print it as JSON, write nothing
  digest papers --new-in page.txt       the papers first seen in that dump

config: ./digest.toml if present, or --config FILE; DIGEST_* environment variables
override it (e.g. DIGEST_DATABASE__PATH). Every key: config.example.toml.
exit codes: 0 ok, 1 some input could not be used (the rest went on), 2 bad usage.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``digest`` argument parser; global options work before or after the command."""
    common = _Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="TOML config file (default: ./digest.toml when present, else built-in defaults)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks with errors"
    )
    parser = _Parser(
        prog="digest",
        description="Trending research papers from Hugging Face Daily Papers dumps, ranked for you, delivered daily.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"paper-digest {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: _Command, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{description}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        sub.set_defaults(run=run)
        return sub

    json_help = "one JSON object per line (a stable interface for scripts)"
    sub = command(
        "parse",
        parse_command,
        "Parse dump files and show their papers; writes nothing.",
        "With --json, one object per file: source, layout, page_date, papers (id, title,\n"
        "abstract, authors_count, organization, published, upvotes, position) and\n"
        "warnings (line, message). Absent values are null.",
    )
    sub.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a dump: the text of a Daily Papers page")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command(
        "ingest",
        ingest_command,
        "Ingest dumps into the database and report, per dump, what is new.",
        "A paper is new when no earlier dump had it (same arXiv id or same normalised\n"
        "title). Ingesting the same bytes again changes nothing. A bad file is reported\n"
        "and skipped; the others still go in, and the exit code is 1.",
    )
    sub.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="dump files, or folders of dumps (name order)")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command("papers", papers_command, "List the papers of the seen-set, in the order first seen.", "")
    sub.add_argument("--new-in", metavar="DUMP", help="only papers first seen in DUMP (file name, id, sha256 prefix)")
    sub.add_argument("-n", "--limit", type=_positive, metavar="N", help="at most N papers")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command("status", status_command, "Show the database: its path, what it holds, the last ingest.", "")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command(
        "subscribe",
        subscribe_command,
        "Check a profile file, store it, and show what the subscriber will get.",
        "Subscribing again with a changed file updates the profile; an unsubscribed\n"
        "name comes back. The profile format: examples/subscribers/ and the README.",
    )
    sub.add_argument("profile", type=Path, metavar="PROFILE.toml", help="a subscriber profile")
    sub = command("unsubscribe", unsubscribe_command, "Stop a subscriber's digests (their history is kept).", "")
    sub.add_argument("name", metavar="NAME")
    sub = command("pause", pause_command, "Pause a subscriber's digests, for good or until a day.", "")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--until", type=_day_arg, metavar="YYYY-MM-DD", help="resume after this day")
    sub = command("resume", resume_command, "Resume a paused subscriber.", "")
    sub.add_argument("name", metavar="NAME")
    sub = command(
        "subscribers",
        subscribers_command,
        "List the subscribers (after syncing the subscribers folder).",
        "The folder is config [subscribers] dir: new files subscribe, changed files\n"
        "update, removed files unsubscribe, a broken file keeps its last good version.",
    )
    sub.add_argument("--all", action="store_true", help="include unsubscribed ones")
    sub.add_argument("--json", action="store_true", help=json_help)
    sub = command("check", check_command, "Check profile files; store nothing.", "")
    sub.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE.toml")

    sub = command(
        "rank",
        rank_command,
        "Rank the papers of a dump, or the newest ones, for one profile.",
        "--json prints one array, best first: [{id, title, score, why: [{kind, label,\n"
        "score, where, detail}]}]. Without --all it holds the papers that reach the\n"
        "profile's min_score, at most max_items; with --all every paper not excluded.",
    )
    sub.add_argument("--profile", type=Path, required=True, metavar="FILE", help="the profile to rank for")
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--dump", type=Path, metavar="FILE", help="rank this dump file's papers (it is not stored)")
    source.add_argument("--new", action="store_true", help="rank the papers new in the latest ingest (default)")
    sub.add_argument("--all", action="store_true", help="every paper, not only those reaching min_score")
    sub.add_argument("--json", action="store_true", help="one JSON array (a stable interface)")

    sub = command(
        "preview",
        preview_command,
        "Show what a subscriber would receive now, as text.",
        "Ranks the papers new in the latest ingest for NAME, leaving out papers they\n"
        "already received, and lists the day's trending papers as their digest would.\n"
        "--format shows the digest as it would be sent: the email's html or text part,\n"
        "the Markdown file, or a chat platform's JSON payloads.",
    )
    sub.add_argument("name", metavar="NAME")
    sub.add_argument(
        "--format",
        choices=("terminal", *render.FORMATS),
        default="terminal",
        help="terminal (default), html, text, md, slack, discord, teams, mattermost or webhook (JSON)",
    )
    sub.add_argument("--out", type=Path, metavar="FILE", help="write the rendered digest to FILE")

    sub = command(
        "send",
        send_command,
        "Make the digests that are due and deliver everything pending.",
        "Syncs the subscribers folder, freezes today's digest for each active subscriber\n"
        "who has none yet, then delivers what is due: new messages, crashed ones, and\n"
        "retries whose time has come. Each message is recorded in the ledger before and\n"
        "after it goes out, so re-running never sends a digest twice. Exit code 1 when\n"
        "anything failed for good.",
    )
    sub.add_argument("--dry-run", action="store_true", help="show what would be made and sent; change nothing")
    sub.add_argument("--subscriber", metavar="NAME", help="only this subscriber")

    sub = command(
        "run",
        run_command,
        "Run the daemon: take new dumps, send each digest at its subscriber's local time.",
        "Polls [ingest] dumps_dir every [schedule] poll_seconds and takes each dump once its\n"
        "size stops changing (write *.tmp, then rename; bad files go to quarantine/). One\n"
        "job per subscriber fires at send_at in their timezone. On start it catches up what\n"
        "was missed (one digest per subscriber covering the gap) and sends due retries.\n"
        "Profiles are re-read when their files change. SIGTERM/SIGINT: the message in\n"
        "flight finishes, then it stops. One log line per event on stderr.\n"
        "--once does everything due now and exits (for cron and systemd timers).",
    )
    sub.add_argument("--once", action="store_true", help="do what is due now, then exit (exit code 1 on failures)")
    sub.add_argument("--log-format", choices=("plain", "json"), default="plain", help="log lines as text or JSON")

    sub = command("deliveries", deliveries_command, "List the delivery ledger, newest first.", "")
    sub.add_argument("--failed", action="store_true", help="only deliveries that failed for good")
    sub.add_argument("-n", "--limit", type=_positive, default=50, metavar="N", help="at most N rows (default 50)")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command(
        "retry", retry_command, "Requeue a failed delivery (or all of them) to go out with the next send.", ""
    )
    sub.add_argument("id", nargs="?", type=int, metavar="ID", help="a delivery number from 'digest deliveries'")
    sub.add_argument("--all", action="store_true", help="every failed or waiting delivery")
    return parser


def _day_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-12-24, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


# --- entry point ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = getattr(args, "verbose", False)
        settings = config.load(getattr(args, "config", None))
        run: _Command = args.run
        return run(args, settings)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `digest parse x | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except DigestError as e:
        if verbose:
            traceback.print_exc()
        _error(str(e))
        return e.exit_code
