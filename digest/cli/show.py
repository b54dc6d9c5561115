"""What the CLI prints: errors and warnings on stderr, JSON lines, progress, and the shared descriptions
of papers, profiles and runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from digest import links, pipeline, render
from digest.config import Settings
from digest.models import WEEKDAYS, Dump, DumpRecord, FetchRecord, Paper, ParseWarning, Profile, Ranked
from digest.text import normalise_title, plural, printable

T = TypeVar("T")

SHOWN_WARNINGS = 20
# From this many files on, ingest draws a progress bar (on a terminal only).
PROGRESS_FROM = 5

err = Console(stderr=True, highlight=False, soft_wrap=True)


def json_line(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=json_default))


def json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def paper_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "published": paper.published,
        "upvotes": paper.upvotes,
        "position": paper.position,
        "authors": list(paper.authors),
        "comments": paper.comments,
        "github_repo": paper.github_repo,
        "github_stars": paper.github_stars,
        "project_page": paper.project_page,
        "ai_summary": paper.ai_summary,
    }


def dump_json(dump: Dump) -> dict[str, Any]:
    return {
        "source": dump.source,
        "layout": dump.layout,
        "page_date": dump.page_date,
        "papers": [paper_json(p) for p in dump.papers],
        "warnings": [{"line": w.line, "message": w.message} for w in dump.warnings],
    }


def error(message: str) -> None:
    """``digest: error: …`` on stderr, each line of a many-line message (one file's problems) its own."""
    for line in message.split("\n"):
        err.print(f"digest: error: {printable(line)}", markup=False)


def warn(message: str) -> None:
    err.print(f"digest: warning: {printable(message)}", markup=False)


def show_warnings(source: str, warnings: Sequence[ParseWarning]) -> None:
    for warning in warnings[:SHOWN_WARNINGS]:
        err.print(printable(f"{source}:{warning.line}: warning: {warning.message}"), markup=False)
    if len(warnings) > SHOWN_WARNINGS:
        more = len(warnings) - SHOWN_WARNINGS
        err.print(f"{source}: … and {more} more warnings (digest parse {source} --json lists them all)", markup=False)


def paper_line(paper: Paper) -> str:
    """The paper's meta line as digests show it, and whether its abstract is missing, in brackets."""
    parts = [part for part in (render.paper_meta(paper), "no abstract" if paper.abstract is None else "") if part]
    return f"  [{' · '.join(parts)}]" if parts else ""


class _Counts(ProgressColumn):
    """``1,204/3,000 · 61/s``: done, in all, and the rate."""

    def render(self, task: Task) -> Text:
        total = f"{int(task.total):,}" if task.total is not None else "?"
        rate = f" · {task.speed:,.0f}/s" if task.speed else ""
        return Text(f"{int(task.completed):,}/{total}{rate}")


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), _Counts(), TimeRemainingColumn(), console=err, transient=True
    )


class Bars:
    """Progress bars on stderr, one per kind of work, when stderr is a terminal; nothing otherwise.

    Use as a context manager; call it as ``bars(doing, done, total)`` (``pipeline.Progress``).
    """

    def __init__(self) -> None:
        self._progress = _bar() if err.is_terminal else None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, doing: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if doing not in self._tasks:
            self._tasks[doing] = self._progress.add_task(doing, total=total)
        self._progress.update(self._tasks[doing], completed=done, total=total)


def progress(items: Iterable[T], *, total: int, doing: str = "ingesting") -> Iterator[T]:
    """Yield the items, drawing a progress bar on a terminal when there are many."""
    if total < PROGRESS_FROM or not err.is_terminal:
        yield from items
        return
    with Bars() as bars:
        for done, item in enumerate(items, start=1):
            yield item
            bars(doing, done, total)


def count_files(paths: Sequence[Path]) -> int:
    return sum(1 for _ in pipeline.expand(paths))


def fetch_text(outcome: pipeline.FetchOutcome) -> str:
    """One line for a fetched day: the dump and what was new, or why nothing was written."""
    record = outcome.record
    if outcome.file is not None and outcome.file.ingested is not None:
        return ingested_line(str(record.detail), outcome.file.ingested.record)
    if record.outcome == "empty":
        return f"{record.day}: no papers listed for {record.day}"
    return f"{record.day}: unchanged since the last fetch ({plural(record.items, 'paper')}); nothing to ingest"


def fetch_json(outcome: pipeline.FetchOutcome) -> dict[str, Any]:
    record = outcome.record
    found: dict[str, Any] = {"day": record.day, "outcome": record.outcome, "items": record.items}
    if outcome.file is not None and outcome.file.ingested is not None:
        stored = outcome.file.ingested.record
        found |= {"dump": record.detail, "papers": stored.papers, "new": stored.new, "already_seen": stored.seen}
    if outcome.error is not None:
        found["error"] = str(outcome.error)
    return found


def fetch_status(record: FetchRecord | None) -> str:
    """The last fetch for ``digest status``: which day, when, and how it went."""
    if record is None:
        return "never; run: digest fetch (or set [fetch] enabled for the daemon)"
    said = {
        "new": f"{plural(record.items, 'paper')} into {record.detail}",
        "unchanged": f"unchanged ({plural(record.items, 'paper')})",
        "empty": "no papers listed",
        "failed": f"failed: {record.detail}",
    }[record.outcome]
    return f"{record.day} at {record.at:%Y-%m-%d %H:%M} UTC: {said}"


def fetch_record_json(record: FetchRecord) -> dict[str, Any]:
    return {
        "day": record.day,
        "at": record.at,
        "outcome": record.outcome,
        "items": record.items,
        "detail": record.detail,
    }


def fetch_summary(days: Sequence[date], *, failed: int, database: str) -> str:
    span = f"{days[0]}" if len(days) == 1 else f"{len(days)} days, {days[0]} to {days[-1]}"
    return f"fetched {span}" + (f"; {failed} failed" if failed else "") + f" (database: {database})"


def ingested_line(name: str, record: DumpRecord) -> str:
    """What ``ingest`` (and ``fetch``) print for a dump stored: layout, page day, papers, new, already seen."""
    counts = f"{plural(record.papers, 'paper')}, {record.new:,} new, {record.seen:,} already seen"
    return f"{name}: {record.layout}, {page_day(record)}: {counts}"


def page_day(record: DumpRecord) -> str:
    return record.page_date.isoformat() if record.page_date else "no page day"


def schedule_text(profile: Profile) -> str:
    when = profile.send_at.strftime("%H:%M")
    if profile.frequency == "weekly":
        cadence = f"weekly on {WEEKDAYS[profile.day or 0].capitalize()}"
    else:
        cadence = profile.frequency
    today = datetime.now(ZoneInfo(profile.timezone)).date()
    local = datetime.combine(today, profile.send_at, tzinfo=ZoneInfo(profile.timezone))
    return f"{cadence} at {when} {profile.timezone}{utc_note(local)}"


def utc_note(local: datetime) -> str:
    """`` (06:30 UTC)`` after a local time, or nothing for a zone that is UTC all year."""
    zone = local.tzinfo
    year = local.year
    if zone is not None and all(
        zone.utcoffset(datetime(year, month, 1)) == timedelta(0) and zone.tzname(datetime(year, month, 1)) in _UTC_NAMES
        for month in (1, 7)
    ):
        return ""
    return f" ({local.astimezone(UTC):%H:%M} UTC)"


_UTC_NAMES = frozenset({"UTC", "GMT", "UCT", "Z"})


def channels_text(profile: Profile, *, smtp: bool = True) -> str:
    """Where a profile's digests go; without an SMTP host (``smtp`` False) email says it goes to the outbox."""
    parts = []
    for channel in profile.delivery:
        if channel.kind == "email":
            address = channel.address or profile.email
            parts.append(f"email {address}" if smtp else f"email {address} (to outbox: no SMTP host)")
        elif channel.url_env:
            parts.append(f"{channel.kind} (URL from ${channel.url_env})")
        else:
            parts.append(channel.kind)
    return ", ".join(parts)


def no_smtp_warning(profiles: Iterable[Profile], settings: Settings) -> None:
    """One warning when subscribers get email but no [smtp] host is set (their email goes to the outbox), or
    when email goes out by SMTP without one-click unsubscribe links."""
    count = sum(1 for profile in profiles if any(channel.kind == "email" for channel in profile.delivery))
    if settings.smtp.host:
        if count and (problem := links.no_one_click(settings.delivery)):
            warn(problem)
        return
    if count:
        warn(
            f"no [smtp] host: email for {plural(count, 'subscriber')} goes to "
            f"{settings.delivery.outbox_dir}/ instead; set [smtp] host (or DIGEST_SMTP__HOST) to send it"
        )


def profile_json(profile: Profile) -> dict[str, Any]:
    """A profile as ``subscribe``, ``check`` and ``subscribers`` print it with --json."""
    return {
        "name": profile.name,
        "email": profile.email,
        "timezone": profile.timezone,
        "schedule": schedule_text(profile),
        "max_items": profile.max_items,
        "min_score": profile.min_score,
        "empty_day": profile.empty_day,
        "trending": profile.trending,
        "keywords": dict(profile.keywords),
        "exclude": list(profile.exclude),
        "seeds": len(profile.seeds),
        "channels": [c.kind for c in profile.delivery],
        "targets": [
            {"kind": c.kind, "address": c.address or (profile.email if c.kind == "email" else None),
             "url_env": c.url_env}
            for c in profile.delivery
        ],
    }  # fmt: skip


def keywords_text(profile: Profile) -> str:
    terms = [term if weight == 1 else f"{term} ×{weight:g}" for term, weight in profile.keywords]
    return ", ".join(terms) or "none"


def describe_profile(profile: Profile, *, archive_titles: set[str] | None = None) -> list[str]:
    lines = [
        f"  when:      {schedule_text(profile)}",
        f"  what:      up to {plural(profile.max_items, 'paper')} scoring at least {profile.min_score:g}"
        + (f", plus {profile.trending} trending" if profile.trending else "")
        + ("; a short notice on empty days" if profile.empty_day == "notice" else "; nothing on empty days"),
        f"  where:     {channels_text(profile)}",
        f"  keywords:  {keywords_text(profile)}",
    ]
    if profile.exclude:
        lines.append(f"  excludes:  {', '.join(profile.exclude)}")
    if profile.seeds:
        known = ""
        if archive_titles is not None:
            found = sum(normalise_title(seed) in archive_titles for seed in profile.seeds)
            known = f" ({found} found in the archive; the others count once ingested)"
        lines.append(f"  seeds:     {len(profile.seeds)} paper{'s' if len(profile.seeds) != 1 else ''}{known}")
    return lines


def ingest_summary(totals: dict[str, int], *, database: str) -> None:
    fresh = totals["dumps"] - totals["repeats"]
    parts = [f"{fresh} dump{'s' if fresh != 1 else ''} ingested"]
    if totals["repeats"]:
        parts.append(f"{totals['repeats']} ingested before (unchanged)")
    if totals["failed"]:
        parts.append(f"{totals['failed']} failed")
    print(
        f"total: {', '.join(parts)}; {plural(totals['papers'], 'paper')}, {totals['new']:,} new, "
        f"{totals['seen']} already seen -> {database}"
    )
    if fresh:
        print("list the new papers of a dump: digest papers --new-in FILE_NAME")


def print_ranked(ranked: Sequence[Ranked]) -> None:
    for item in ranked:
        print(f"{item.rank:>4}. {item.score:5.2f}  {item.paper.title}")
        reasons = [render.describe(r) for r in item.why if r.kind != "trending"] or [render.describe(item.why[0])]
        print(f"             {'; '.join(reasons)}")


def sync_report(report: pipeline.SyncReport) -> int:
    """What a sync of the subscribers folder changed and what is broken. Returns the error count."""
    for name, outcome in report.changes.items():
        err.print(f"subscribers: {name} {outcome} (from {report.folder})", markup=False)
    for name in report.removed:
        err.print(f"subscribers: {name} unsubscribed (its file left {report.folder})", markup=False)
    for held in report.held:
        err.print(f"subscribers: {pipeline.held_line(held)}", markup=False)
    for problem in report.errors:
        error(f"{problem} (the last good version stays in force)")
    return len(report.errors)


def quiet_note(chosen: Sequence[Ranked], everything: Sequence[Ranked], profile: Profile, *, command: str) -> None:
    """On a quiet day, how many papers matched something but stayed under ``min_score``, and how to see them."""
    chosen_ids = {item.paper.id for item in chosen}
    under = [item for item in everything if item.paper.id not in chosen_ids and item.score > 0]
    if not under:
        return
    best = max(item.score for item in under)
    noun = "paper" if len(under) == 1 else "papers"
    print(
        f"  {len(under)} more {noun} matched under min_score {profile.min_score:g} (best {best:.2f}); "
        f"{command} shows them"
    )


def migrated(copied: Sequence[tuple[str, int, str]], *, source: str, target: str, seconds: float) -> str:
    """What ``digest migrate-db`` copied (each table, its rows and checksum), and what to do next."""
    width = max(len(table) for table, _, _ in copied)
    lines = [f"copied {source} to {target}; every table counted and checksummed on both sides:"]
    lines += [f"  {table:<{width}}  {rows:>10,} rows  {checksum[:12]}" for table, rows, checksum in copied]
    lines.append(f"{sum(rows for _, rows, _ in copied):,} rows in {seconds:.1f} s.")
    lines.append(f'next: set [database] url = "{target}" (the password in PGPASSWORD), then restart the daemon')
    lines.append(f"and the web side; {source} is left as it was: keep it as your backup")
    return "\n".join(lines)
