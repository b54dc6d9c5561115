"""What the CLI prints: errors and warnings on stderr, JSON lines, progress, and the shared descriptions
of papers, profiles and runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digest import pipeline, render
from digest.config import Settings
from digest.models import WEEKDAYS, Dump, DumpRecord, FetchRecord, Paper, ParseWarning, Profile, Ranked
from digest.store import Store
from digest.text import normalise_title

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
        err.print(f"digest: error: {line}", markup=False)


def warn(message: str) -> None:
    err.print(f"digest: warning: {message}", markup=False)


def show_warnings(source: str, warnings: Sequence[ParseWarning]) -> None:
    for warning in warnings[:SHOWN_WARNINGS]:
        err.print(f"{source}:{warning.line}: warning: {warning.message}", markup=False)
    if len(warnings) > SHOWN_WARNINGS:
        more = len(warnings) - SHOWN_WARNINGS
        err.print(f"{source}: … and {more} more warnings (digest parse {source} --json lists them all)", markup=False)


def paper_line(paper: Paper) -> str:
    """The paper's meta line as digests show it, and whether its abstract is missing, in brackets."""
    parts = [part for part in (render.paper_meta(paper), "no abstract" if paper.abstract is None else "") if part]
    return f"  [{' · '.join(parts)}]" if parts else ""


def progress(items: Iterable[T], *, total: int, doing: str = "ingesting") -> Iterator[T]:
    """Yield the items, drawing a progress bar on a terminal when there are many."""
    if total < PROGRESS_FROM or not err.is_terminal:
        yield from items
        return
    with Progress(
        TextColumn(doing),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=total)
        for item in items:
            yield item
            bar.advance(task)


def count_files(paths: Sequence[Path]) -> int:
    return sum(1 for _ in pipeline.expand(paths))


def fetch_text(outcome: pipeline.FetchOutcome) -> str:
    """One line for a fetched day: the dump and what was new, or why nothing was written."""
    record = outcome.record
    if outcome.file is not None and outcome.file.ingested is not None:
        return ingested_line(str(record.detail), outcome.file.ingested.record)
    if record.outcome == "empty":
        return f"{record.day}: no papers listed for {record.day}"
    return f"{record.day}: unchanged since the last fetch ({record.items} papers); nothing to ingest"


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
        "new": f"{record.items} papers into {record.detail}",
        "unchanged": f"unchanged ({record.items} papers)",
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


def fetch_summary(days: Sequence[date], *, failed: int, database: Path) -> str:
    span = f"{days[0]}" if len(days) == 1 else f"{len(days)} days, {days[0]} to {days[-1]}"
    return f"fetched {span}" + (f"; {failed} failed" if failed else "") + f" (database: {database})"


def ingested_line(name: str, record: DumpRecord) -> str:
    """What ``ingest`` (and ``fetch``) print for a dump stored: layout, page day, papers, new, already seen."""
    counts = f"{record.papers} papers, {record.new} new, {record.seen} already seen"
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
    utc = "" if profile.timezone == "UTC" else f" ({local.astimezone(UTC):%H:%M} UTC)"
    return f"{cadence} at {when} {profile.timezone}{utc}"


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
    """One warning when subscribers get email but no [smtp] host is set: their email goes to the outbox."""
    if settings.smtp.host:
        return
    count = sum(1 for profile in profiles if any(channel.kind == "email" for channel in profile.delivery))
    if count:
        warn(
            f"no [smtp] host: email for {count} subscriber{'s' if count != 1 else ''} goes to "
            f"{settings.delivery.outbox_dir}/ instead; set [smtp] host (or DIGEST_SMTP__HOST) to send it"
        )


def keywords_text(profile: Profile) -> str:
    terms = [term if weight == 1 else f"{term} ×{weight:g}" for term, weight in profile.keywords]
    return ", ".join(terms) or "none"


def describe_profile(profile: Profile, *, archive_titles: set[str] | None = None) -> list[str]:
    lines = [
        f"  when:      {schedule_text(profile)}",
        f"  what:      up to {profile.max_items} papers scoring at least {profile.min_score:g}"
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


def ingest_summary(totals: dict[str, int], *, database: Path) -> None:
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


def print_ranked(ranked: Sequence[Ranked]) -> None:
    for item in ranked:
        print(f"{item.rank:>4}. {item.score:5.2f}  {item.paper.title}")
        reasons = [render.describe(r) for r in item.why if r.kind != "trending"] or [render.describe(item.why[0])]
        print(f"             {'; '.join(reasons)}")


def send_summary(report: pipeline.SendReport, *, settings: Settings, dry_run: bool) -> None:
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


def halted_errors(report: pipeline.SendReport) -> None:
    """One error line per channel whose settings cannot work, and one when no email reached the server."""
    for kind, reason in report.halted.items():
        waiting = report.untried.get(kind, 0)
        error(f"{reason} ({plural(waiting, kind + ' delivery')} wait, untried; 'digest send' sends them after the fix)")
    if report.unreachable_only():
        count = report.unreachable
        error(f"the SMTP server could not be reached: all {plural(count, 'email')} wait for a retry")


def plural(count: int, noun: str) -> str:
    """``1 email``, ``3,000 emails``, ``2 deliveries``."""
    if count == 1:
        return f"1 {noun}"
    many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{count:,} {many}"


def sync(store: Store, settings: Settings) -> int:
    """Sync the subscribers folder; report what changed and what is broken. Returns the error count."""
    report = pipeline.sync_subscribers(store, settings.subscribers.dir, at=datetime.now(UTC))
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
