"""SIGKILL at chosen points: afterwards everyone has their digest, and repeats only come from the crash window.

A repeat is possible only when the kill lands after the server accepted a
message and before the ledger recorded it as sent: that row is still in
``sending``, and the retry carries the same Message-ID. The test checks that
every repeat is such a row, and prints the counts (run with -s to see them).

The kill points are driven from the sink, not from the clock: the SMTP server
accepts k messages, then holds every further one at a gate; once the sender is
waiting there, it is killed. So "k messages were out when it died" holds on a
loaded machine too. A quarter of the runs kill at a random moment instead
(start-up, ranking, rendering, sending or done): nothing is asserted about
where those land, only that nothing is lost.

The second test SIGKILLs the daemon (``digest run``) while its worker processes
make digests: the workers and multiprocessing's resource tracker must go with it.

``CRASH_RUNS`` and ``CRASH_DAEMON_RUNS`` set the number of runs (``make soak`` runs 100 each).
"""

from __future__ import annotations

import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import pipeline
from digest.store import Store

from .deliverykit import World, make_world
from .servers import Mailbox, PostgresServer, SMTPServer, smtp_server

RUNS = int(os.environ.get("CRASH_RUNS", "20"))
DAEMON_RUNS = int(os.environ.get("CRASH_DAEMON_RUNS", "2"))
PEOPLE = 20
WAIT = 120.0  # seconds a sender may take to reach a kill point, however loaded the machine


def _config(root: Path, world: World, port: int, extra: str = "") -> None:
    world.write_config(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_s = 5\n'
        f'[delivery]\noutbox_dir = "{root / "outbox"}"\nbackoff_s = 1\nbackoff_max_s = 30\n{extra}'
    )


def _start(root: Path, command: str = "send") -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", command],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_at_gate(server: SMTPServer, child: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Until the sender has a message waiting at the gate (so exactly ``hold_after`` were accepted)."""
    deadline = time.monotonic() + WAIT
    while server.box.held == 0:
        assert child.poll() is None, f"the sender exited ({child.returncode}) before reaching the gate"
        assert time.monotonic() < deadline, f"the sender did not reach the gate in {WAIT:.0f} s"
        time.sleep(0.005)


def _finish(world: World, *, holder: str | None = None, ahead: float = 0.0) -> set[str]:
    """What was in flight at the kill (every row of it held by ``holder``, when given); then the job finished as
    the next `digest send` would, ``ahead`` seconds from now (past the killed process's leases)."""
    with Store.open(world.settings.database.location) as store:
        in_flight = {d.message_id for d in store.ledger.deliveries(states=("sending",))}
        if holder is not None:
            holders = {row[0] for row in store.db.conn.execute("SELECT holder FROM deliveries WHERE state = 'sending'")}
            assert holders <= {holder}, f"rows in flight held by {holders}, not only by the killed {holder}"
        pipeline.run_daily(store, world.settings, clock=lambda: datetime.now(UTC) + timedelta(seconds=ahead))
        for _ in range(4):  # retries whose time has come
            pipeline.deliver(store, world.settings, clock=lambda: datetime.now(UTC) + timedelta(seconds=60))
        assert {d.state for d in store.ledger.deliveries()} == {"sent"}
    return in_flight


@pytest.mark.slow
def test_sigkill_at_chosen_points_loses_nothing_and_repeats_only_in_flight(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    tally: Counter[str] = Counter()
    for run in range(RUNS):
        root = tmp_path / f"run{run:02d}"
        gate = None if run % 4 == 3 else (0 if run % 4 == 1 else rng.randint(1, PEOPLE - 1))
        with smtp_server(Mailbox(delay=0.01, hold_after=gate)) as server:
            world = make_world(root, people=PEOPLE, smtp_port=server.port, backoff_max_s=30.0)
            _config(root, world, server.port)
            child = _start(root)
            if gate is None:
                time.sleep(rng.uniform(0.0, 3.0))
            else:
                _wait_at_gate(server, child)
            killed = child.poll() is None
            if killed:
                child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            accepted_before = len(server.box.messages)
            server.box.hold_after = None  # open the gate for the run that finishes the job
            if gate is not None:
                assert killed and accepted_before == gate, f"run {run}: killed at {accepted_before}, not {gate}"
            in_flight = _finish(world)
            copies = Counter(m["Message-ID"] for m in server.box.messages)
            addresses = Counter(m["To"] for m in server.box.messages)
        assert set(addresses) == {f"user{n:03d}@example.org" for n in range(PEOPLE)}, f"run {run}: someone got nothing"
        repeats = {mid for mid, n in copies.items() if n > 1}
        assert all(n <= 2 for n in copies.values())
        assert repeats <= in_flight, f"run {run}: a repeat outside the crash window"
        connections = world.settings.smtp.connections
        assert len(in_flight) <= connections, f"run {run}: {len(in_flight)} rows in flight, over {connections}"
        tally["runs"] += 1
        tally["killed"] += killed
        tally["killed while messages were going out"] += killed and 0 < accepted_before < PEOPLE
        tally["rows in flight at the kill"] += len(in_flight)
        tally["most rows in flight at one kill"] = max(tally["most rows in flight at one kill"], len(in_flight))
        tally["repeats"] += len(repeats)
        tally["messages"] += sum(copies.values())
    print("\ncrash test:", dict(tally))
    gated = sum(1 for run in range(RUNS) if run % 2 == 0)
    assert tally["killed while messages were going out"] >= gated  # every gated run died mid-sending


def _processes() -> dict[int, tuple[int, str]]:
    """Every live process: its parent's pid and its command line (from /proc; zombies left out)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                found[int(entry.name)] = (int(ppid), cmdline)
    return found


def _children(pid: int) -> dict[int, str]:
    """The live children of a process, with their command lines."""
    return {child: cmd for child, (parent, cmd) in _processes().items() if parent == pid}


def _none_left(root: Path, within: float = 10.0) -> None:
    """No process started from ``root`` is left (a forkserver names its sys.path, ``root`` first)."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid, (_, cmd) in _processes().items() if "forkserver" in cmd and str(root) in cmd]
        if not left:
            return
        assert time.monotonic() < deadline, f"still running after the sender died: {left}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent has not collected it yet


def _digests_stored(path: Path) -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM digests").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


def _wait_for_workers(child: subprocess.Popen[bytes], database: Path) -> dict[int, str]:
    """Until two worker processes run and a batch of theirs is stored: mid-making. The daemon's workers are
    its forkserver's children (it has threads, so it does not fork them itself): the family is all of them."""
    deadline = time.monotonic() + WAIT
    family: dict[int, str] = {}
    while True:
        assert child.poll() is None, f"digest run exited ({child.returncode}) before its workers made a batch"
        assert time.monotonic() < deadline, (
            f"no workers making digests after {WAIT:.0f} s: {family}, {_digests_stored(database)} digests stored"
        )
        family = _children(child.pid)
        workers = {
            pid: cmd for server, cmd in family.items() if "forkserver" in cmd for pid, cmd in _children(server).items()
        }
        if len(workers) >= 2 and _digests_stored(database) > 0:
            return family | workers
        time.sleep(0.02)


PG_RUNS = int(os.environ.get("CRASH_PG_RUNS", "6"))


def test_two_senders_on_postgresql_one_sigkilled_lose_nothing_and_repeat_only_its_rows_in_flight(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """Two `digest send` share the day on one PostgreSQL database; the first is killed with messages at the sink's
    gate. Every subscriber still gets a digest, made once, and a repeat is only ever a row the killed one had
    on the wire (its lease runs out, and the finishing run takes its claims over)."""
    rng = random.Random(20261203)
    tally: Counter[str] = Counter()
    for run in range(PG_RUNS):
        root = tmp_path / f"pg{run:02d}"
        gate = rng.randint(1, PEOPLE - 1)
        with smtp_server(Mailbox(delay=0.01, hold_after=gate)) as server:
            world = make_world(
                root, people=PEOPLE, smtp_port=server.port, backoff_max_s=30.0, url=postgres.create(), lease_s=30
            )
            _config(root, world, server.port, "[make]\nbatch_size = 4\n")  # five batches for the two to share
            senders = [_start(root), _start(root)]
            deadline = time.monotonic() + WAIT
            while server.box.held == 0:  # one of them (a sender that found no work left may have ended)
                assert any(s.poll() is None for s in senders), "both senders ended before reaching the gate"
                assert time.monotonic() < deadline, f"no sender reached the gate in {WAIT:.0f} s"
                time.sleep(0.005)
            killed = next(s for s in senders if s.poll() is None)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            server.box.hold_after = None  # the other one goes on, and the run that finishes the job
            assert all(s.wait(timeout=WAIT) in (0, 1) for s in senders if s is not killed)
            _none_left(root)  # the killed one's workers and forkserver went with it
            in_flight = _finish(world, holder=f"{platform.node()}:{killed.pid}", ahead=60)
            copies = Counter(m["Message-ID"] for m in server.box.messages)
            with Store.open(world.settings.database.location) as store:
                made = Counter(row[0] for row in store.db.conn.execute("SELECT subscriber FROM digests"))
        assert set(made) == {f"user{n:03d}" for n in range(PEOPLE)} and set(made.values()) == {1}
        assert {m["To"] for m in server.box.messages} == {f"user{n:03d}@example.org" for n in range(PEOPLE)}
        repeats = {mid for mid, n in copies.items() if n > 1}
        assert all(n <= 2 for n in copies.values())
        assert repeats <= in_flight, f"run {run}: a repeat outside the killed sender's rows in flight"
        tally["runs"] += 1
        tally["rows in flight at the kill"] += len(in_flight)
        tally["repeats"] += len(repeats)
        tally["messages"] += sum(copies.values())
    print("\npostgresql crash test:", dict(tally))


@pytest.mark.slow
def test_sigkill_of_the_daemon_while_workers_make_digests_leaves_no_process_and_loses_nothing(
    tmp_path: Path,
) -> None:
    # Enough batches that the workers are making for a second or more: warm workers made 12 batches of 4 in
    # well under the time it takes to look at them.
    people, tally = 160, Counter[str]()
    for run in range(DAEMON_RUNS):
        root = tmp_path / f"daemon{run:02d}"
        with smtp_server(Mailbox()) as server:
            world = make_world(root, people=people, smtp_port=server.port, backoff_max_s=30.0)
            make = "[make]\nworkers = 2\nbatch_size = 2\n"  # 80 batches: two workers start
            _config(root, world, server.port, f'{make}[ingest]\ndumps_dir = "{root / "dumps"}"\n')
            child = _start(root, "run")
            try:
                family = _wait_for_workers(child, world.settings.database.path)  # a worker may end its batch now
            finally:
                child.send_signal(signal.SIGKILL)  # also when the wait failed: no daemon outlives its test
                child.wait(timeout=30)
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = {pid: cmd for pid, cmd in family.items() if _alive(pid)}
            assert not left, f"run {run}: still running after the daemon died: {left}"
            in_flight = _finish(world)
            copies = Counter(m["Message-ID"] for m in server.box.messages)
        assert {m["To"] for m in server.box.messages} == {f"user{n:03d}@example.org" for n in range(people)}
        repeats = {mid for mid, n in copies.items() if n > 1}
        assert repeats <= in_flight, f"run {run}: a repeat outside the crash window"
        connections = world.settings.smtp.connections
        assert len(in_flight) <= connections, f"run {run}: {len(in_flight)} rows in flight, over {connections}"
        tally["runs"] += 1
        tally["its processes that went with it"] += len(family)
        tally["repeats"] += len(repeats)
    print("\ndaemon crash test:", dict(tally))
