"""The daemon's timing with an injected clock: local send times, DST, catch-up, dump polling, the lock."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import cadence, events, passes, pipeline, schedule
from digest.config import ScheduleSettings
from digest.errors import DigestError
from digest.models import Profile
from digest.store import Store

from .conftest import DUMPS
from .deliverykit import Clock, World, digest_process, make_world

STEP = timedelta(minutes=10)


def person(name: str, zone: str, at: str, frequency: str = "daily", extra: str = "") -> str:
    return (
        f'name = "{name}"\ntimezone = "{zone}"\nsend_at = "{at}"\nfrequency = "{frequency}"\n'
        f'empty_day = "notice"\nkeywords = ["learning"]\n[[channels]]\nkind = "outbox"\n{extra}'
    )


def world_with(tmp_path: Path, people: dict[str, str], dumps: list[Path] | None = None) -> World:
    world = make_world(tmp_path, people=0, dumps=dumps)
    for name, text in people.items():
        (tmp_path / "subscribers" / f"{name}.toml").write_text(text)
    (tmp_path / "dumps").mkdir()
    world.settings = world.settings.model_copy(
        update={"ingest": world.settings.ingest.model_copy(update={"dumps_dir": tmp_path / "dumps"})}
    )
    return world


def run_clock(world: World, start: datetime, end: datetime, *, step: timedelta = STEP) -> dict[str, list[datetime]]:
    """Tick the way the daemon does, every ``step``; return when each subscriber's digests were made."""
    made: dict[str, list[datetime]] = defaultdict(list)
    log = events.EventLog(stream=io.StringIO(), clock=world.clock)
    watcher = pipeline.DumpWatcher(world.settings.ingest.dumps_dir, settle_seconds=120)
    world.clock.now = start
    while world.clock.now <= end:
        result = passes.tick(world.settings, clock=world.clock, log=log, watcher=watcher)
        for name, _, _ in result.report.made:
            made[name].append(world.clock.now)
        world.clock.now += step
    return made


@pytest.mark.slow
def test_three_zones_receive_at_their_own_local_times(tmp_path: Path) -> None:
    world = world_with(
        tmp_path,
        {
            "tokyo": person("tokyo", "Asia/Tokyo", "07:00"),
            "berlin": person("berlin", "Europe/Berlin", "07:30"),
            "newyork": person("newyork", "America/New_York", "08:00"),
        },
    )
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    made = run_clock(world, start, start + timedelta(days=3))
    expected = {
        "tokyo": ("Asia/Tokyo", 7, 0),
        "berlin": ("Europe/Berlin", 7, 30),
        "newyork": ("America/New_York", 8, 0),
    }
    for name, (zone, hour, minute) in expected.items():
        first, *daily = made[name]
        assert first == start  # a new subscriber gets the edition that is due at once
        assert len(daily) == 3
        for moment in daily:
            local = moment.astimezone(ZoneInfo(zone))
            due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            assert timedelta(0) <= local - due < STEP, f"{name} at {local}"


@pytest.mark.parametrize(
    ("start", "change"), [(date(2026, 3, 26), date(2026, 3, 29)), (date(2026, 10, 22), date(2026, 10, 25))]
)
@pytest.mark.slow
@pytest.mark.parametrize("at", ["02:30", "07:30"])
def test_one_digest_per_day_across_daylight_saving_changes(tmp_path: Path, start: date, change: date, at: str) -> None:
    world = world_with(tmp_path, {"berlin": person("berlin", "Europe/Berlin", at)})
    begin = datetime.combine(start, clock_time(12), tzinfo=UTC)
    made = run_clock(world, begin, begin + timedelta(days=6), step=timedelta(minutes=15))
    days = [m.astimezone(ZoneInfo("Europe/Berlin")).date() for m in made["berlin"][1:]]
    assert days == sorted(set(days)) and len(days) == 6
    assert change in days  # the day the clocks change has its digest too
    profile = Profile(name="b", timezone="Europe/Berlin", send_at=clock_time.fromisoformat(at))
    for moment in made["berlin"][1:]:
        fire = cadence.fire_at(profile, moment.astimezone(ZoneInfo("Europe/Berlin")).date())
        assert timedelta(0) <= moment - fire < timedelta(minutes=15)


@pytest.mark.slow
def test_weekdays_and_weekly(tmp_path: Path) -> None:
    world = world_with(
        tmp_path,
        {
            "work": person("work", "UTC", "09:00", "weekdays"),
            "week": person("week", "UTC", "09:00", "weekly", extra=""),
        },
    )
    (tmp_path / "subscribers" / "week.toml").write_text(
        person("week", "UTC", "09:00", "weekly").replace(
            'frequency = "weekly"', 'frequency = "weekly"\nday = "wednesday"'
        )
    )
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
    made = run_clock(world, start, start + timedelta(days=14), step=timedelta(hours=1))
    assert [m.strftime("%a") for m in made["work"][1:]] == ["Tue", "Wed", "Thu", "Fri", "Mon"] * 2
    assert [m.strftime("%a %H") for m in made["week"][1:]] == ["Wed 09", "Wed 09"]


def test_down_for_three_days_catches_up_with_one_digest_covering_the_gap(tmp_path: Path) -> None:
    first = [DUMPS / "000_b302ddefaf34c389.txt", DUMPS / "001_dc7b62520b3cf1f2.txt"]
    world = world_with(tmp_path, {"ada": person("ada", "Europe/Berlin", "07:30")}, dumps=first)
    day0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert run_clock(world, day0, day0)["ada"] == [day0]
    with Store.open(world.settings.database.path) as store:  # dumps keep coming while the daemon is down
        for n, name in enumerate(["002_de1b89f38ace8a1e.txt", "003_7a5f3204ee6361bf.txt"], start=1):
            for _ in pipeline.ingest_files(
                [DUMPS / name], papers=store.papers, settings=world.settings, now=day0 + timedelta(days=n)
            ):
                pass
    back = day0 + timedelta(days=3, hours=5)
    made = run_clock(world, back, back + timedelta(hours=6))
    assert made["ada"] == [back]  # one digest, at once, and no more that day
    rows = (
        sqlite3.connect(world.settings.database.path)
        .execute("SELECT edition, new_count FROM digests WHERE subscriber = 'ada' ORDER BY id")
        .fetchall()
    )
    assert rows[-1] == ("2026-11-26", 84 + 63)  # the latest edition, with every paper of the gap


@pytest.mark.slow
def test_paused_until_a_day_then_back(tmp_path: Path) -> None:
    world = world_with(tmp_path, {"ada": person("ada", "UTC", "07:00")})
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    run_clock(world, start, start)
    with Store.open(world.settings.database.path) as store:
        store.subscribers.set_status("ada", "paused", until=date(2026, 11, 25), at=start)
    made = run_clock(world, start + timedelta(hours=1), start + timedelta(days=4))
    assert [m.date() for m in made["ada"]] == [date(2026, 11, 26), date(2026, 11, 27)]


def test_a_dropped_dump_is_taken_on_the_next_poll_and_a_half_written_one_waits(tmp_path: Path) -> None:
    world = world_with(tmp_path, {}, dumps=[DUMPS / "000_b302ddefaf34c389.txt"])
    lines = io.StringIO()
    log = events.EventLog(stream=lines, clock=world.clock)
    watcher = pipeline.DumpWatcher(tmp_path / "dumps", settle_seconds=120)
    world.clock.now = datetime.now(UTC)

    def poll() -> int:
        return passes.tick(world.settings, clock=world.clock, log=log, watcher=watcher).ingested

    text = (DUMPS / "003_7a5f3204ee6361bf.txt").read_bytes()
    fresh = tmp_path / "dumps" / "fresh.txt"
    fresh.write_bytes(text[: len(text) // 2])
    assert poll() == 0  # first sight
    with fresh.open("ab") as handle:
        handle.write(text[len(text) // 2 :])
    assert poll() == 0  # it grew: still being written
    assert poll() == 1  # unchanged across two polls: complete
    assert poll() == 0  # taken once
    (tmp_path / "dumps" / "ignored.txt.tmp").write_text("still being written")
    (tmp_path / "dumps" / ".hidden").write_text("not a dump")
    bad = tmp_path / "dumps" / "bad.txt"
    bad.write_bytes(b"\x00\x01 not text")
    poll()
    assert poll() == 0
    assert not bad.exists()
    assert (tmp_path / "dumps" / "quarantine" / "bad.txt").read_bytes() == b"\x00\x01 not text"
    note = (tmp_path / "dumps" / "quarantine" / "bad.txt.error").read_text()
    assert "binary data (NUL byte at offset 0)" in note
    assert "quarantined file=bad.txt" in lines.getvalue()
    assert (tmp_path / "dumps" / "ignored.txt.tmp").exists()


@pytest.mark.slow
def test_the_daemon_wakes_at_the_next_edition_that_cadence_names(tmp_path: Path) -> None:
    # Mon 23 Nov, 07:30 UTC: ada's 07:30 in Berlin is past (next: Tue 06:30 UTC); ben's 08:00 in Denver
    # is 15:00 UTC today. One job wakes the daemon for the earliest; there is no job per subscriber.
    world = world_with(
        tmp_path,
        {"ada": person("ada", "Europe/Berlin", "07:30"), "ben": person("ben", "America/Denver", "08:00", "weekdays")},
    )
    world.settings = world.settings.model_copy(update={"schedule": ScheduleSettings(misfire_grace_s=3 * 3600)})
    daemon = schedule.Daemon(world.settings, log=events.EventLog(stream=io.StringIO()), clock=world.clock)
    daemon.tick()
    daemon.wake_at_next()
    [job] = daemon.scheduler.get_jobs()
    assert job.id == "wake" and job.trigger.run_date == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3 * 3600)
    (tmp_path / "subscribers" / "ada.toml").write_text(person("ada", "Europe/Berlin", "06:15"))
    (tmp_path / "subscribers" / "ben.toml").unlink()
    daemon.tick()
    daemon.wake_at_next()
    [job] = daemon.scheduler.get_jobs()
    assert job.trigger.run_date == datetime(2026, 11, 24, 5, 15, tzinfo=UTC)  # 06:15 in Berlin, Tuesday
    (tmp_path / "subscribers" / "ada.toml").unlink()
    daemon.tick()
    daemon.wake_at_next()
    assert daemon.scheduler.get_jobs() == []  # nobody left to wake for; the poll still runs


def test_the_lock_keeps_a_second_daemon_off(tmp_path: Path) -> None:
    database = tmp_path / "d.sqlite3"
    second = schedule.exclusive(database)
    refused = pytest.raises(DigestError, match=rf"in use by a running digest \(pid {os.getpid()}\)")
    with schedule.exclusive(database), refused, second:
        pass
    with schedule.exclusive(database):  # released
        pass


def test_a_stop_asked_for_while_the_daemon_starts_still_stops_it(tmp_path: Path) -> None:
    # The signal lands after the start-up pass, before the scheduler runs: shutting down then finds nothing
    # running, so the scheduler's first job must see the stop. A timer ends a hung start and fails the test.
    world = world_with(tmp_path, {"ada": person("ada", "UTC", "07:00")})
    daemon = schedule.Daemon(world.settings, log=events.EventLog(stream=io.StringIO()), clock=world.clock)
    set_wake = daemon.wake_at_next

    def signal_arrives() -> None:
        daemon.stopping.set()
        daemon._shut_down()  # what the first SIGTERM does; the scheduler is not running yet
        set_wake()

    daemon.wake_at_next = signal_arrives  # type: ignore[method-assign]
    rescue = threading.Timer(20, lambda: daemon.scheduler.shutdown(wait=False))
    rescue.start()
    try:
        daemon.forever()
    finally:
        hung = not rescue.is_alive()
        rescue.cancel()
    assert not hung, "the daemon kept running after a stop asked for while it started"


@pytest.mark.slow
def test_run_as_a_process_refuses_a_second_and_stops_on_sigterm(tmp_path: Path) -> None:
    world = world_with(tmp_path, {"ada": person("ada", "UTC", "07:00")}, dumps=[DUMPS / "000_b302ddefaf34c389.txt"])
    world.write_config(
        f'[ingest]\ndumps_dir = "{tmp_path / "dumps"}"\n[delivery]\noutbox_dir = "{tmp_path / "outbox"}"\n'
        "[schedule]\npoll_s = 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    daemon = digest_process(tmp_path, "run", "--log-format", "json")
    try:
        deadline = time.monotonic() + 30
        while not list((tmp_path / "outbox").glob("ada/new/*.eml")) and time.monotonic() < deadline:
            time.sleep(0.1)
        second, strict = (
            subprocess.run(
                [sys.executable, "-m", "digest", "run", "--once", *flags],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            for flags in ([], ["--strict"])
        )
        assert second.returncode == 0  # cron's run: the daemon is doing the work
        [said] = second.stderr.splitlines()
        assert " skipped " in said and "another run is working; nothing to do" in said
        assert strict.returncode == 1 and "in use by a running digest" in strict.stderr
        (tmp_path / "dumps" / "drop.txt").write_bytes((DUMPS / "002_de1b89f38ace8a1e.txt").read_bytes())
        time.sleep(3.5)  # a few 1-second polls: seen, unchanged, taken
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 143  # as a shell reports SIGTERM: stopped by it, cleanly
    events = [line for line in err.splitlines() if line.startswith("{")]
    names = [json.loads(line)["event"] for line in events]
    assert names[0] == "started" and names[-2:] == ["stopping", "stopped"]
    last = json.loads(events[-1])
    assert last["signal"] == "SIGTERM" and last["detail"] == "interrupted: 0 sent, 0 wait for the next send"
    assert {"digest_made", "delivered", "ingested"} <= set(names)


def test_run_once_exit_code_reflects_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = world_with(tmp_path, {"ada": person("ada", "UTC", "07:00")})
    (tmp_path / "subscribers" / "team.toml").write_text(
        person("team", "UTC", "07:00").replace('kind = "outbox"', 'kind = "slack"\nurl_env = "NOT_SET_HOOK"')
    )
    monkeypatch.delenv("NOT_SET_HOOK", raising=False)
    out = io.StringIO()
    world.clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    daemon = schedule.Daemon(world.settings, log=events.EventLog(stream=out, clock=world.clock), clock=world.clock)
    assert daemon.once(look_twice_after=0) == 1
    assert "failed id=" in out.getvalue() and "NOT_SET_HOOK" in out.getvalue()
    clean = schedule.Daemon(world.settings, log=events.EventLog(stream=io.StringIO()), clock=Clock(world.clock.now))
    (tmp_path / "subscribers" / "team.toml").unlink()
    assert clean.once(look_twice_after=0) == 0


def test_a_stop_between_a_one_shot_job_and_its_removal_ends_the_loop_cleanly() -> None:
    """The race a signal can hit: the scheduler stops after running a one-shot job, before removing it.
    A trigger that stops the scheduler at exactly that step makes it happen every time."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.date import DateTrigger

    ran: list[str] = []

    class StopsWhenAsked(DateTrigger):  # type: ignore[misc]  # APScheduler 3 ships no types
        """Fires once, now; asked for the next time (right after the run is handed out), stops the scheduler."""

        def __init__(self, scheduler: BlockingScheduler) -> None:
            super().__init__(datetime.now(UTC))
            self.scheduler = scheduler
            self.asked = 0

        def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
            if previous is None:
                return super().get_next_fire_time(previous, now)  # type: ignore[no-any-return]
            self.asked += 1  # first while the run times are counted; then after the run was handed out
            if self.asked == 2:
                self.scheduler.shutdown(wait=True)  # what the SIGTERM handler does, on this thread
            return None

    for kind, survives in ((BlockingScheduler, False), (schedule.Scheduler, True)):
        scheduler = kind(timezone=UTC)
        scheduler.add_job(ran.append, StopsWhenAsked(scheduler), args=[kind.__name__], id="once")
        if survives:
            scheduler.start()  # returns: the stop ended the loop
        else:
            with pytest.raises(Exception, match="No job by the id of once"):
                scheduler.start()
    assert ran == ["BlockingScheduler", "Scheduler"]
