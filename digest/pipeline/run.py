"""One run: the sequence that ``digest send`` and every pass of the daemon share (``run_once``)."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.config import Settings
from digest.pipeline.delivery import Deliverer
from digest.pipeline.intake import FileOutcome, ingest_files
from digest.pipeline.make import make_digests
from digest.pipeline.report import Planned, Progress, SendReport, no_progress
from digest.pipeline.retention import prune
from digest.pipeline.signups import SignupMail, mail_signups
from digest.pipeline.subscribers import SyncReport, sync_subscribers
from digest.store import Store


def _ignore(_: object) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """Called as a run goes: for each dump file taken, after the profiles are synced, after digests are made,
    and (``progress``) as digests are made and deliveries done."""

    file: Callable[[FileOutcome], None] = _ignore
    synced: Callable[[SyncReport], None] = _ignore
    made: Callable[[SendReport], None] = _ignore
    progress: Progress = no_progress


def run_once(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    files: Sequence[Path] = (),
    names: set[str] | None = None,
    rng: random.Random | None = None,
    stop: Callable[[], bool] = lambda: False,
    hooks: Hooks = Hooks(),
) -> SendReport:
    """Ingest ``files``, sync the profiles, mail the sign-ups, freeze the digests that are due, deliver
    everything due. On PostgreSQL the first three are one process's at a time (``Store.chores``): while
    another does them, this one goes on to the making and says so (``report.chores_elsewhere``).

    Delivery runs beside the making (``Deliverer``): each frozen batch's messages
    go out while the next batches are made, and what was due before the run at once.
    Once ``stop()`` turns true (an interrupt), no new digest is made and no new
    message handed out; those on the wire finish and are recorded, and
    ``report.waiting`` and ``report.unmade`` say what the next run has to do.
    """
    with store.chores() as mine:  # on PostgreSQL, one process at a time; the others go on to the making
        if mine:
            for outcome in ingest_files(files, papers=store.papers, settings=settings, now=clock()):
                hooks.file(outcome)
            sync = sync_subscribers(store.subscribers, settings.subscribers.dir, at=clock())
            hooks.synced(sync)
            signups = mail_signups(store, settings, now=clock())
        else:
            sync, signups = SyncReport(settings.subscribers.dir, {}, [], []), SignupMail()
    sending = SendReport()
    with Deliverer(
        store.location, settings, clock=clock, names=names, rng=rng, stop=stop, progress=hooks.progress, report=sending
    ) as sender:
        sender.wake()  # what was due before this run (retries, a crashed run's rows) goes out at once

        def made(doing: str, done: int, total: int) -> None:
            hooks.progress(doing, done, total)
            sender.wake()  # a batch was frozen: its deliveries are due

        report = make_digests(store, settings, now=clock(), names=names, progress=made, stop=stop)
        report.profile_errors = sync.errors
        report.signup_mails = signups.sent
        report.chores_elsewhere = not mine
        hooks.made(report)
    report.sent, report.retries, report.failed = sending.sent, sending.retries, sending.failed
    report.halted, report.untried, report.unreachable = sending.halted, sending.untried, sending.unreachable
    report.bounced, report.sent_elsewhere = sending.bounced, sending.sent_elsewhere
    if stop():
        report.waiting = len(store.ledger.due(clock(), names=names))
    return report


def run_daily(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    names: set[str] | None = None,
    dry_run: bool = False,
    rng: random.Random | None = None,
    progress: Progress = no_progress,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """The daily job (``run_once`` without dumps, then ``[retention]``); ``stop`` as for ``run_once``.

    A dry run does the same syncing and freezing on a snapshot of the database,
    reports what would go out, and leaves the real database and every server alone.
    """
    if not dry_run:
        report = run_once(store, settings, clock=clock, names=names, rng=rng, stop=stop, hooks=Hooks(progress=progress))
        if not stop():
            report.pruned = prune(store, settings, now=clock()).bodies
        return report
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "dry-run.sqlite3"
        store.db.snapshot(copy)
        with Store.open(copy) as shadow:
            errors = sync_subscribers(shadow.subscribers, settings.subscribers.dir, at=clock()).errors
            report = make_digests(shadow, settings, now=clock(), names=names, progress=progress)
            report.planned = [Planned(d.subscriber, d.channel) for d in shadow.ledger.due(clock(), names=names)]
    report.profile_errors = errors
    return report
