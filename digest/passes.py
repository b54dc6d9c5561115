"""One pass of the daemon, and its fetch: what ``digest run`` does each time it wakes, each said as
event lines.

``tick`` takes complete dumps, syncs the subscribers folder, makes what is due and delivers
what waits; ``fetch_missed`` fetches today's list and the missed days. Both go through
``pipeline`` and report through an ``events.EventLog``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from digest import pipeline
from digest.config import Settings
from digest.errors import MailboxError
from digest.events import Clock, EventLog
from digest.fetch import Client
from digest.mailboxes import open_mailbox
from digest.store import Store


@dataclass
class Tick:
    """What one pass did."""

    ingested: int = 0
    quarantined: int = 0
    bounces: int = 0  # bounce messages read
    report: pipeline.SendReport = field(default_factory=pipeline.SendReport)

    @property
    def failures(self) -> int:
        report = self.report
        stuck = len(report.halted) + report.unreachable_only()
        return self.quarantined + len(report.failed) + len(report.profile_errors) + stuck


def tick(
    settings: Settings,
    *,
    clock: Clock,
    log: EventLog,
    watcher: pipeline.DumpWatcher,
    names: set[str] | None = None,
    stop: Callable[[], bool] = lambda: False,
    progress: pipeline.Progress = pipeline.no_progress,
) -> Tick:
    """One pass: ``pipeline.run_once`` on the dumps that are ready, each event logged as it happens."""
    result = Tick()

    def took(outcome: pipeline.FileOutcome) -> None:
        if outcome.error is not None:
            aside = pipeline.set_aside(outcome.path, str(outcome.error), dumps_dir=watcher.folder, now=clock())
            watcher.take(outcome.path)  # should it stay (the move failed), it is not taken again until it changes
            result.quarantined += 1
            log("quarantined", file=outcome.path.name, moved=aside, error=str(outcome.error))
            return
        watcher.take(outcome.path)
        assert outcome.ingested is not None  # noqa: S101 - an invariant, for the type checker; no input is checked by it
        record = outcome.ingested.record
        if not outcome.ingested.repeat:
            result.ingested += 1
            log("ingested", file=outcome.path.name, papers=record.papers, new=record.new, seen=record.seen)

    hooks = pipeline.Hooks(
        file=took,
        synced=lambda sync: _log_sync(log, sync),
        made=lambda made: _log_made(log, made),
        progress=progress,
    )
    with Store.open(settings.database.location) as store:
        if settings.bounces.source:  # before making: an address that bounced since is not mailed again
            with store.chores() as mine:  # on PostgreSQL one process reads the mailbox at a time
                if mine:
                    result.bounces = read_bounces(store, settings, clock=clock, log=log, stop=stop)
        ready = watcher.ready(clock())
        result.report = pipeline.run_once(
            store, settings, clock=clock, files=ready, names=names, stop=stop, hooks=hooks
        )
    if result.report.chores_elsewhere:
        log("ingest_skipped", reason="another process sharing the database is ingesting and syncing")
    _log_deliveries(log, result.report)
    return result


def read_bounces(store: Store, settings: Settings, *, clock: Clock, log: EventLog, stop: Callable[[], bool]) -> int:
    """The bounce mailbox read and applied; each suspension and complaint logged. A mailbox that cannot be
    read is one event line: the pass goes on."""
    read = 0
    try:
        with open_mailbox(settings.bounces.source, settings.bounces) as box:
            for outcome in pipeline.read_mailbox(store, box, settings, now=clock(), stop=stop):
                read += 1
                if outcome.kind == "unknown":
                    log("bounce_unknown", message=outcome.source, note=outcome.report.note)
                for change in outcome.changes:
                    log("bounce", message=outcome.source, kind=outcome.kind, action=change)
    except MailboxError as e:
        log("bounces_unreadable", error=str(e))
    return read


def _log_sync(log: EventLog, sync: pipeline.SyncReport) -> None:
    for name, change in sync.changes.items():
        log("subscriber", name=name, change=change)
    for name in sync.removed:
        log("subscriber", name=name, change="unsubscribed")
    for held in sync.held:
        log("subscriber", name=held.name, change="stays unsubscribed", by=held.unsubscribed_by)
    for error in sync.errors:
        for line in error.lines:
            log("profile_error", error=f"{line} (the last good version stays in force)")


def _log_made(log: EventLog, report: pipeline.SendReport) -> None:
    for name, edition, count in report.made:
        log("digest_made", subscriber=name, edition=edition, papers=count)
    for name, edition in report.skipped:
        log("digest_skipped", subscriber=name, edition=edition, reason="nothing matched")


def _log_deliveries(log: EventLog, report: pipeline.SendReport) -> None:
    for delivery in report.sent:
        log("delivered", id=delivery.id, subscriber=delivery.subscriber, channel=delivery.channel)
    for delivery, reason, when in report.retries:
        log(
            "retry",
            id=delivery.id,
            subscriber=delivery.subscriber,
            channel=delivery.channel,
            next_try=when,
            reason=reason,
        )
    for delivery, reason in report.failed:
        log("failed", id=delivery.id, subscriber=delivery.subscriber, channel=delivery.channel, reason=reason)
    for kind, reason in report.halted.items():
        log("channel_halted", kind=kind, waiting=report.untried.get(kind, 0), error=reason)


def fetch_missed(
    settings: Settings,
    *,
    clock: Clock,
    log: EventLog,
    stop: threading.Event | None = None,
    deadline: float | None = None,
) -> int:
    """Today's list, and each of the last ``backfill_days`` days with no good fetch yet; returns the failures."""
    now = clock()
    today = now.astimezone(UTC).date()
    failed = 0
    with Store.open(settings.database.location) as store, store.chores() as mine:
        if not mine:
            log("fetch_skipped", reason="another process sharing the database is ingesting or fetching")
            return 0
        days = [
            day
            for day in pipeline.days_between(today - timedelta(days=settings.fetch.backfill_days), today)
            if day == today or (record := store.fetches.get(day)) is None or record.outcome == "failed"
        ]
        with Client.from_environment(settings.fetch, stop=stop, deadline=deadline) as client:
            for outcome in pipeline.fetch_days(days, store=store, settings=settings, client=client, now=now):
                failed += outcome.error is not None
                _log_fetch(log, outcome)
    return failed


def _log_fetch(log: EventLog, outcome: pipeline.FetchOutcome) -> None:
    record = outcome.record
    if outcome.error is not None:
        log("fetch_failed", day=record.day, error=str(outcome.error))
    elif outcome.file is not None and outcome.file.ingested is not None:
        stored = outcome.file.ingested.record
        log("fetched", day=record.day, file=record.detail, papers=stored.papers, new=stored.new, seen=stored.seen)
    else:
        log("fetched", day=record.day, outcome=record.outcome, papers=record.items)
