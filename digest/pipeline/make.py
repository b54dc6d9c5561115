"""Making the digests that are due: which editions, in which batches, in this process or in workers."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime

from digest import cadence
from digest.config import Settings
from digest.models import Paper, Profile, Subscriber
from digest.pipeline.batch import Batch, Made, Member, Windows, ledger_channels, make_batch
from digest.pipeline.ranking import vote_weights, window_start
from digest.pipeline.report import Progress, SendReport, no_progress
from digest.pipeline.subscribers import asks, is_active, stored_profile
from digest.pipeline.workers import make_in_processes
from digest.store import Store

MAKING = "making digests"
PARALLEL_FROM = 2  # batches due at once before worker processes are worth starting (each takes ~2 s to start)


def due_edition(
    subscriber: Subscriber, profile: Profile, *, now: datetime, latest: tuple[datetime, str] | None
) -> datetime | None:
    """The firing whose edition should be made now, if any: the latest one not made yet.

    ``latest`` is the subscriber's latest digest (made at, edition), from ``Store.latest_digests``. A reader
    who signed up on the page gets no edition that fired before they joined (``joined_at``).
    """
    fire = cadence.last_fire(profile, now)
    if fire is None or not is_active(subscriber, today=fire.date()):
        return None
    if latest is None and subscriber.joined_at is not None and fire <= subscriber.joined_at:
        return None
    if latest is not None and (latest[1] >= fire.date().isoformat() or latest[0] >= fire):
        return None  # this edition, or a catch-up covering it, exists already
    return fire


def make_digests(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    names: set[str] | None = None,
    timings: dict[str, float] | None = None,
    progress: Progress = no_progress,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Freeze the due edition for every active subscriber.

    An edition is due once its firing (send_at, in the subscriber's zone, on the
    days of their frequency) has passed and it has not been made. After
    downtime, only the latest missed edition is made, covering every paper since
    the previous digest. Subscribers that share a window of candidate papers are
    ranked together (``rank_all``, ``[make] batch_size`` at a time) and each batch is frozen
    in one transaction. When many batches are due, ``[make] workers``
    processes make them side by side (``report.workers``). ``timings``, when
    given, collects seconds per phase (rank, render, freeze), summed over the
    processes, for the benchmarks. ``progress`` hears ("making digests",
    subscribers done, subscribers due) after each batch. ``stop()`` is asked
    between batches (an interrupt): what is not made then (``report.unmade``) is
    made by the next run.
    """
    report = SendReport()
    if store.papers.latest_dump() is None:
        return report
    batches, read = _batches(store, settings, now=now, names=names, report=report)
    due = sum(len(b.members) for b in batches)
    report.workers = _processes(settings, batches=len(batches))

    def count(made: Made) -> None:
        _count(report, made, timings)
        progress(MAKING, len(report.made) + len(report.skipped), due)

    if report.workers == 1:
        windows = Windows(read)  # the papers _batches read: each window's are read once
        for batch in batches:
            if stop():
                break
            count(make_batch(store, settings, windows, batch, now=now, lock=nullcontext()))
        report.unmade = due - len(report.made) - len(report.skipped) - report.made_elsewhere
        return report
    del read  # each worker reads its windows' papers itself
    broken = make_in_processes(
        store.location, settings, batches, now=now, workers=report.workers, on_made=count, stop=stop
    )
    report.unmade = due - len(report.made) - len(report.skipped) - report.made_elsewhere
    if broken:
        # A worker died (killed, out of memory). Each batch is stored whole or not at all, so
        # what is still due is exactly what was not stored: make that here, in this process.
        alone = settings.model_copy(update={"make": settings.make.model_copy(update={"workers": 1})})
        rest = make_digests(store, alone, now=now, names=names, timings=timings, stop=stop)
        report.made += rest.made
        report.skipped += rest.skipped
        report.made_elsewhere += rest.made_elsewhere
        report.unmade = rest.unmade
    return report


def _batches(
    store: Store, settings: Settings, *, now: datetime, names: set[str] | None, report: SendReport
) -> tuple[list[Batch], dict[datetime, list[Paper]]]:
    """The due subscribers, grouped by the window of papers their edition draws from, ``batch_size`` a batch;
    and each window's papers, as read to plan them. A due subscriber whose every channel is an email to a
    suspended address (it bounced) is not made (``report.suspended``)."""
    latest = store.digests.latest()
    suspended = frozenset(store.bounces.suspended())
    windows: dict[datetime, list[Member]] = {}
    asking: set[str] = set()
    for subscriber in store.subscribers.all():
        if names is not None and subscriber.name not in names:
            continue
        profile = stored_profile(subscriber)
        mine = latest.get(profile.name)
        fire = due_edition(subscriber, profile, now=now, latest=mine)
        if fire is not None and suspended and not ledger_channels(profile, settings, suspended=suspended):
            report.suspended.append(profile.name)  # due, but every channel of theirs is an address that bounced
        elif fire is not None:
            since = window_start(profile, fire, mine[0] if mine else None, history_days=settings.retention.history_days)
            windows.setdefault(since, []).append(Member(profile, fire))
            if asks(subscriber, profile, on=fire, ask_days=settings.rank.ask_days):
                asking.add(profile.name)
    batches: list[Batch] = []
    read: dict[datetime, list[Paper]] = {}
    for since, members in windows.items():
        # What each subscriber had before, read before this run writes anything.
        read[since] = store.papers.since(since)
        paper_ids = [p.id for p in read[since]]
        seen = store.digests.digested_among(paper_ids) if paper_ids else {}
        size = batch_size(settings.make.batch_size, papers=len(paper_ids))
        for start in range(0, len(members), size):
            part = members[start : start + size]
            had = {p.name: seen[p.name] for p, _ in part if p.name in seen}
            in_part = [p.name for p, _ in part]
            votes = vote_weights(store, in_part, settings=settings, now=now)
            keys = store.subscribers.link_keys(in_part)
            batches.append(Batch(since, part, had, keys, votes, suspended, frozenset(asking.intersection(in_part))))
    return batches, read


BATCH_CELLS = 1_000_000  # (paper, subscriber) scores a batch ranks at once: ~50 MB while it is ranked


def batch_size(configured: int, *, papers: int) -> int:
    """Subscribers per batch: ``[make] batch_size``, fewer on a day of many papers.

    Ranking holds a few dense papers x subscribers matrices; capping their cells
    keeps a worker's memory the same on a day of 5,000 papers as on one of 1,000.
    """
    return max(1, min(configured, BATCH_CELLS // max(papers, 1)))


def _count(report: SendReport, made: Made, timings: dict[str, float] | None) -> None:
    report.made += made.made
    report.skipped += made.skipped
    report.made_elsewhere += len(made.elsewhere)
    if timings is not None:
        for phase, seconds in made.seconds.items():
            timings[phase] = timings.get(phase, 0.0) + seconds


def _processes(settings: Settings, *, batches: int) -> int:
    """How many processes make this run's digests: one unless several batches are due."""
    if batches < PARALLEL_FROM:
        return 1
    wanted = settings.make.workers or os.cpu_count() or 1
    return max(1, min(wanted, batches))
