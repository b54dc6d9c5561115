"""The daemon (``digest run``): APScheduler polls for dumps and wakes at the next edition's time.

Jobs, in an in-memory job store rebuilt from the profiles at every start (no
pickled jobs):

* ``poll`` (every ``poll_s``): take complete dumps from ``dumps_dir``,
  sync the subscribers folder, make any digest whose time has come and deliver
  whatever is due.
* ``wake``: one job at the earliest next firing of any subscriber, which
  ``cadence`` alone works out (DST included); its pass makes what is due, and it
  is set again after every pass, so a changed profile moves it. There is no job
  per subscriber.
* ``fetch`` (with ``[fetch] enabled``): at ``[fetch] at`` UTC each day, today's
  list from Hugging Face and any day of the last ``backfill_days`` not fetched
  yet, written as dumps and ingested.
* ``prune``: at 03:30 UTC each day, ``[retention]`` (and at the end of ``--once``).

At start, one pass catches up: every digest missed while the daemon was down is
made once (one digest covering the whole gap) and due retries go out. Fetching
(when enabled) runs in a thread of its own beside the passes, within ``[fetch]
run_deadline_s``, so it never delays a digest. A lock file beside the database
keeps a second daemon off it. The first SIGTERM or SIGINT stops new work: the
messages on the wire finish and are recorded, the last line says what waits,
and the exit code is 143 or 130; a second one stops at once (``interrupts``).
Each event is one log line.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import cadence, links, pipeline
from digest.config import Settings
from digest.errors import BusyError, DigestError, StoreError
from digest.events import Clock, EventLog, said_by, utc_now
from digest.interrupts import Interrupt
from digest.passes import Tick, fetch_missed, tick
from digest.store import Location, Store

# --- one daemon per database --------------------------------------------------------------


@contextmanager
def exclusive(database: Location) -> Iterator[None]:
    """Hold ``DATABASE.lock`` for the whole run; a second holder gets a clear error. On PostgreSQL nothing is
    held: any number of processes share the work by claiming it (``pipeline.claims``, ``Store.chores``)."""
    if isinstance(database, str):
        yield
        return
    path = database.with_name(database.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as e:
        raise StoreError(
            f"{path}: cannot open the lock file ({e.strerror}); make it and its folder {path.parent} "
            "writable by this user, or point database.path elsewhere"
        ) from e
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise BusyError(
            f"{database}: in use by a running digest (pid {holder}); stop it first, or let it do the work"
        ) from None
    try:
        with suppress(OSError):  # the pid is a note for the next holder; a full disk must not stop the run here
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


# --- the daemon ---------------------------------------------------------------------------


class Scheduler(BlockingScheduler):  # type: ignore[misc]  # APScheduler 3 ships no types
    """APScheduler's blocking scheduler, stoppable at any moment.

    A stop (a signal's handler runs on this thread, between any two steps) can come after the
    scheduler ran a one-shot job and before it removed it; a stopped scheduler then no longer
    finds the job and raises ``JobLookupError`` out of its loop. Here that ends the loop, as the
    stop meant to.
    """

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()  # type: ignore[no-any-return]
        except JobLookupError:
            if self.state == STATE_STOPPED:
                return None
            raise


class Daemon:
    """``digest run``: the long-running process, or one pass with ``once``."""

    def __init__(
        self,
        settings: Settings,
        *,
        log: EventLog,
        clock: Clock = utc_now,
        progress: pipeline.Progress = pipeline.no_progress,
    ) -> None:
        self.settings = settings
        self.log = log
        said_by("digest.store", log)  # the store's upgrade line, in this log's format
        self.clock = clock
        self.progress = progress  # long work shown as it goes (a terminal's progress bars for --once)
        self.interrupt = Interrupt(say=lambda line: self.log("stopping", detail=line), then=self._shut_down)
        self.stopping = self.interrupt.requested
        self._working = threading.Lock()  # held by the job that runs a pass: stopping waits for it
        self._fetcher: threading.Thread | None = None
        self._last: Tick | None = None
        poll = settings.schedule.poll_s
        self.watcher = pipeline.DumpWatcher(settings.ingest.dumps_dir, settle_seconds=2 * poll)
        self.scheduler = Scheduler(
            executors={"default": ThreadPoolExecutor(1)},  # one pass at a time; a fetch runs beside it
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._grace = int(settings.schedule.misfire_grace_s)

    def tick(self, names: set[str] | None = None) -> Tick:
        """One pass (``tick``), for every subscriber or only ``names``."""
        self._last = tick(
            self.settings,
            clock=self.clock,
            log=self.log,
            watcher=self.watcher,
            names=names,
            stop=self.stopping.is_set,
            progress=self.progress,
        )
        return self._last

    def once(self, *, look_twice_after: float = 1.0, strict: bool = False) -> int:
        """Everything due now, then exit: for cron, systemd timers and CI. 1 if anything failed.

        With no second poll to wait for, it looks at the dumps folder twice,
        ``look_twice_after`` seconds apart: a file whose size held still is complete.
        When another run holds the database (the daemon, or the previous cron
        run still working), that run does the work: one line and exit 0, or
        with ``strict`` the error and exit 1.
        """
        try:
            with self.interrupt:
                code = self._once(look_twice_after)
        except BusyError as e:
            if strict:
                raise
            self.log("skipped", reason="another run is working; nothing to do", detail=str(e))
            return 0
        return self._interrupted() if self.stopping.is_set() else code

    def _once(self, look_twice_after: float) -> int:
        with exclusive(self.settings.database.location):
            fetch_failures = self.fetch() if self.settings.fetch.enabled else 0
            if self.watcher.ready(self.clock()) != self.watcher.files():
                self.stopping.wait(look_twice_after)
            if self.stopping.is_set():
                return 1
            done = self.tick()
            if not self.stopping.is_set():
                self._guard(self.prune, hold=False)
        self.log("done", ingested=done.ingested, sent=len(done.report.sent), failed=done.failures + fetch_failures)
        return 1 if done.failures or fetch_failures else 0

    def prune(self) -> None:
        """``[retention]``, once: what it dropped, as a ``pruned`` event (none when nothing was due)."""
        with Store.open(self.settings.database.location) as store:
            done = pipeline.prune(store, self.settings, now=self.clock())
        if done.anything:
            self.log(
                "pruned", bodies=done.bodies, bytes=done.bytes, digests=done.digests, sightings=done.sightings,
                fetches=done.fetches, votes=done.votes, signups=done.signups, bounces=done.bounces,
                reclaimed=done.reclaimed,
            )  # fmt: skip

    def _prune_job(self) -> None:
        self._guard(self.prune)

    def fetch(self) -> int:
        """Today's list and the missed days before it (``fetch_missed``), within ``[fetch] run_deadline_s``
        and until a stop; the failures."""
        deadline = time.monotonic() + self.settings.fetch.run_deadline_s
        return fetch_missed(self.settings, clock=self.clock, log=self.log, stop=self.stopping, deadline=deadline)

    def fetch_beside(self) -> None:
        """A fetch in a thread of its own, beside the schedule, so it never delays a digest; the poll after it
        takes the new papers. One at a time; a stop ends it at its next read (the thread never holds the exit)."""
        if self._fetcher is not None and self._fetcher.is_alive():
            self.log("fetch_skipped", reason="the previous fetch is still running")
            return
        self._fetcher = threading.Thread(target=self._fetch_then_poll, name="fetch", daemon=True)
        self._fetcher.start()

    def _fetch_then_poll(self) -> None:
        self._guard(self.fetch, hold=False)
        if not self.stopping.is_set() and self.scheduler.get_job("poll") is not None:
            self.scheduler.modify_job("poll", next_run_time=datetime.now(UTC))

    def wake_at_next(self) -> None:
        """One job, ``wake``, at the earliest next firing of any subscriber: ``cadence`` alone decides when
        an edition is due (the pass it starts makes whatever is due, as the poll does)."""
        with Store.open(self.settings.database.location) as store:  # the unsubscribed are left out
            profiles = [pipeline.stored_profile(s) for s in store.subscribers.all()]  # parse is cached by text
        with suppress(JobLookupError):  # before the scheduler starts, replace_existing would not replace it
            self.scheduler.remove_job("wake")
        if not profiles:
            return
        when = min(cadence.next_fire(profile, self.clock()) for profile in profiles)
        self.scheduler.add_job(
            self._wake_job, DateTrigger(when), id="wake", name="the next edition",
            coalesce=True, max_instances=1, misfire_grace_time=self._grace,
        )  # fmt: skip

    def _wake_job(self) -> None:
        self._guard(self.tick)
        self._guard(self.wake_at_next)

    def _fetch_job(self) -> None:
        self.fetch_beside()

    def _poll_job(self) -> None:
        self._guard(self.tick)
        self._guard(self.wake_at_next)  # a profile may have changed its time

    def _guard(
        self, work: Callable[[], object], *, fatal: tuple[type[DigestError], ...] = (), hold: bool = True
    ) -> None:
        """A job that fails is logged; the daemon goes on (unless the error is one of ``fatal``). With ``hold``,
        the work holds ``_working``, so a stop waits for it."""
        if self.stopping.is_set():
            return
        try:
            with self._working if hold else nullcontext():
                work()
        except fatal:
            raise
        except DigestError as e:
            self.log("error", error=str(e))
        except Exception as e:  # the daemon must outlive a bad pass; the next poll retries
            self.log("error", error=f"unexpected {type(e).__name__}: {e}")

    def forever(self) -> int:
        with self.interrupt, exclusive(self.settings.database.location):
            self.log(
                "started",
                database=str(self.settings.database.location),
                dumps=str(self.watcher.folder),
                pid=os.getpid(),
            )
            if self.settings.smtp.host and (problem := links.no_one_click(self.settings.delivery)):
                self.log("warning", detail=problem)
            # Catch up: what was missed while down, and due retries, while the missed days are fetched
            # beside it (their papers go into the next editions). A database that cannot be used at
            # start (damaged, read-only) stops the daemon with its one line; later, a fault is logged
            # and the next poll tries again (a full disk may clear).
            if self.settings.fetch.enabled:
                self.fetch_beside()
                hour, minute = self.settings.fetch.at.split(":")
                self.scheduler.add_job(
                    self._fetch_job, CronTrigger(hour=int(hour), minute=int(minute), timezone=UTC), id="fetch",
                    name="fetch from Hugging Face", coalesce=True, max_instances=1, misfire_grace_time=self._grace,
                )  # fmt: skip
            self._guard(self.tick, fatal=(StoreError,))
            if self.stopping.is_set():
                return self._interrupted()
            self.wake_at_next()
            self.scheduler.add_job(
                self._poll_job, IntervalTrigger(seconds=self.settings.schedule.poll_s), id="poll", name="poll"
            )
            self.scheduler.add_job(
                self._prune_job, CronTrigger(hour=3, minute=30, timezone=UTC), id="prune", name="retention",
                coalesce=True, max_instances=1, misfire_grace_time=self._grace,
            )  # fmt: skip
            # A signal between the stop check above and the start finds no running scheduler to shut down;
            # this first job, run as soon as the scheduler starts, shuts it down then.
            self.scheduler.add_job(self._stop_if_asked, id="stop_check", name="a stop asked for while starting")
            self.scheduler.start()  # blocks until a signal stops it
            if self.stopping.is_set():
                with self._working:  # the pass under way hands out nothing new, and finishes what is on the wire
                    return self._interrupted()
        self.log("stopped")
        return 0

    def _stop_if_asked(self) -> None:
        if self.stopping.is_set():
            self._shut_down()

    def _shut_down(self) -> None:
        """After the first SIGTERM or SIGINT: no new job starts (the pass under way winds down on its own)."""
        with suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)

    def _interrupted(self) -> int:
        """The last line of an interrupted run (what went out, what waits), and its exit code."""
        sent = len(self._last.report.sent) if self._last else 0
        with Store.open(self.settings.database.location) as store:
            waiting = len(store.ledger.due(self.clock()))
        said = f"interrupted: {sent} sent, {waiting} wait for the next send"
        self.log("stopped", signal=self.interrupt.name, detail=said)
        return self.interrupt.exit_code
