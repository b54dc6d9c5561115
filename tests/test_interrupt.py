"""Ctrl-C (SIGINT) and SIGTERM are not a crash: what is on the wire finishes and is recorded; nobody gets two copies.

The interrupt points are chosen by the SMTP sink, not by the clock: it accepts k
messages and holds every further one at a gate. The test sends the signal once
the sender waits there, waits until the sender says it is stopping, then opens
the gate: the held messages finish, and no new one may start. The next `digest
send` delivers the rest. Every subscriber must then have exactly one copy.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from digest.interrupts import Interrupt
from digest.store import Store

from .deliverykit import digest_process, make_world
from .servers import Mailbox, smtp_server
from .test_crash import PEOPLE, WAIT, _finish, _wait_at_gate

CONNECTIONS = 2


def _lines(stream: object) -> queue.Queue[str]:
    """The lines a child writes, as they come (read by a thread, so a wait for one has a bound)."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            found.put(line)
        found.put("")

    threading.Thread(target=read, daemon=True).start()
    return found


def _reap(child: subprocess.Popen[str], errors: queue.Queue[str]) -> None:
    """A child the test is done with, or gave up on: ended, and its pipes closed once their reader saw the end
    (so a failing case leaves no open pipe to fail the next test on this worker)."""
    if child.poll() is None:
        child.kill()
    child.wait(timeout=WAIT)
    if child.stderr is not None and not child.stderr.closed:
        with contextlib.suppress(queue.Empty):
            while errors.get(timeout=WAIT) != "":
                pass
        child.stderr.close()
    if child.stdout is not None and not child.stdout.closed:
        child.stdout.close()


def _until(lines: queue.Queue[str], word: str) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + WAIT
    while not any(word in line for line in seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line with {word!r} in {WAIT:.0f} s: {seen}"
        line = lines.get(timeout=remaining)
        assert line, f"the child ended before saying {word!r}: {seen}"
        seen.append(line)
    return seen


@pytest.mark.parametrize(
    ("command", "number", "gate"),
    [
        ("send", signal.SIGINT, 0),
        ("send", signal.SIGINT, 7),
        ("send", signal.SIGTERM, 13),
        ("send", signal.SIGINT, PEOPLE - 1),
        ("run --once", signal.SIGTERM, 5),
        ("run --once", signal.SIGINT, 11),
    ],
)
@pytest.mark.slow
def test_an_interrupt_at_a_sink_chosen_point_sends_every_digest_exactly_once(
    tmp_path: Path, command: str, number: signal.Signals, gate: int
) -> None:
    with smtp_server(Mailbox(delay=0.02, hold_after=gate)) as server:
        world = make_world(tmp_path, people=PEOPLE, smtp_port=server.port, backoff_max_s=30.0)
        world.write_config(
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\nconnections = {CONNECTIONS}\n'
            f'[delivery]\noutbox_dir = "{tmp_path / "outbox"}"\nbackoff_s = 1\n'
        )
        child = digest_process(tmp_path, *command.split())
        errors = _lines(child.stderr)
        try:
            _wait_at_gate(server, child)
            child.send_signal(number)
            _until(errors, "stopping")  # the handler ran: from here on nothing new is handed out
            held = server.box.held
            server.box.hold_after = None  # what is on the wire finishes
            child.wait(timeout=WAIT)  # (its output is a few lines: no pipe fills meanwhile)
            assert child.stdout is not None and child.stderr is not None
            with child.stdout, child.stderr:
                out = child.stdout.read()
                said = []
                while (line := errors.get(timeout=WAIT)) != "":
                    said.append(line)
            accepted = len(server.box.messages)
            assert child.returncode == 128 + number
            assert gate + held <= accepted <= gate + CONNECTIONS  # those on the wire went out, and no new one
            [summary] = [line for line in said if "interrupted:" in line] or [f"no summary in {said}; out: {out!r}"]
            counts = f"interrupted: {accepted} sent, {PEOPLE - accepted} wait for the next send"
            if command == "send":
                assert summary.strip() == f"digest: error: {counts}"
            else:  # the daemon's last log line
                assert f" stopped signal={signal.Signals(number).name} detail=" in summary and counts in summary
        finally:
            _reap(child, errors)
        with Store.open(world.settings.database.path) as store:
            assert store.ledger.deliveries(states=("sending",)) == []  # every outcome recorded: nothing in doubt
        _finish(world)
        copies = Counter(m["Message-ID"] for m in server.box.messages)
        addresses = Counter(m["To"] for m in server.box.messages)
    assert set(copies.values()) == {1}, "someone got two copies"
    assert addresses == Counter({f"user{n:03d}@example.org": 1 for n in range(PEOPLE)})


def test_a_signal_while_the_main_thread_holds_a_lock_the_stop_needs_does_not_hang_the_process() -> None:
    """The daemon hung here: SIGTERM came while its main thread, submitting a job to the scheduler's pool, held
    the pool's lock, and the handler's scheduler shutdown waited for that same lock, in that same thread."""
    held = threading.Lock()
    stopped = threading.Event()
    said: list[str] = []

    def shut_down() -> None:  # what the daemon's stop does: takes a lock the main thread may hold
        with held:
            stopped.set()

    with Interrupt(say=said.append, then=shut_down) as interrupt, held:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        assert interrupt.requested.wait(WAIT)  # seen while the lock is still held: the main thread goes on
        assert not stopped.is_set()
    assert stopped.wait(WAIT) and interrupt.exit_code == 143  # the stop ran once the lock was let go
    assert len(said) == 1 and said[0].startswith("SIGTERM: stopping")
