"""Ctrl-C and SIGTERM as a request to stop, not a crash: the first asks, a second (or the grace running out) ends.

``Interrupt`` is used as a context manager around a run (``digest send``,
``digest run --once``, the daemon). While it is active the first SIGINT or
SIGTERM only sets ``requested``: the run stops handing out new work, lets what
is on the wire finish and records every outcome. A second signal, or
``grace_s`` seconds without the run having ended, ends the process at once with
128 + the signal's number; rows still on the wire then are the crash case
(sent again next time, with the same Message-ID).

Nothing is done inside the signal handler. Python runs a handler in the main
thread between any two steps, also while that thread holds a lock (a thread
pool's, while it submits a job; the log's, while it writes a line), and a
handler that takes the same lock waits for itself for ever. So the handler
does nothing, and the signal's number, which Python writes to a wakeup pipe
(``signal.set_wakeup_fd``), is read by a thread of its own, ``interrupt``,
which says so, starts the grace timer and runs ``then``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

GRACE_S = 30.0  # how long what is on the wire may take to finish after the first signal
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """The first SIGINT/SIGTERM sets ``requested``; the second one, or ``grace_s`` later, exits at once."""

    def __init__(
        self,
        *,
        grace_s: float = GRACE_S,
        say: Callable[[str], None] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        """``say`` tells the operator (stderr by default); ``then`` runs after the first signal (e.g. a
        scheduler's shutdown)."""
        self.requested = threading.Event()
        self.number: int | None = None  # the signal that asked
        self._grace_s = grace_s
        self._say = say or _stderr
        self._then = then
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None
        self._pipe: tuple[int, int] | None = None  # the wakeup pipe: read by the watcher, written by Python
        self._wakeup = -1  # the wakeup fd before ours (-1: none)

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            read, write = self._pipe = os.pipe()
            os.set_blocking(write, False)  # Python's C handler must never block on it
            self._wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, _noted)
            threading.Thread(target=self._watch, args=(read,), name="interrupt", daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._wakeup)
            os.close(self._pipe[1])  # the watcher reads the end of the pipe and stops; it closes its side
            self._pipe = None

    def _watch(self, read: int) -> None:
        """Each signal's number as Python writes it to the wakeup pipe, acted on here, in this thread."""
        try:
            while chunk := os.read(read, 64):
                for number in chunk:
                    if number in SIGNALS:
                        self.request(number)
        finally:
            os.close(read)

    def is_set(self) -> bool:
        return self.requested.is_set()

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM (as a shell reports a process a signal ended)."""
        return 128 + (self.number or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.number or signal.SIGINT).name

    def request(self, number: int) -> None:
        """What the first signal does, in the ``interrupt`` thread (also callable directly, e.g. by a test or
        another thread; never from a signal handler)."""
        if self.requested.is_set():
            self._now(number, "stopping now")
            return
        self.number = number
        self.requested.set()
        self._say(
            f"{signal.Signals(number).name}: stopping; what is on the wire finishes and is recorded "
            f"(at most {self._grace_s:g} s). Press Ctrl-C again to stop at once"
        )
        self._timer = threading.Timer(self._grace_s, self._now, args=(number, "the grace time ran out"))
        self._timer.daemon = True
        self._timer.start()
        if self._then is not None:
            self._then()

    def _now(self, number: int, why: str) -> None:
        self._say(f"{signal.Signals(number).name}: {why}; messages still on the wire are sent again next time")
        sys.stderr.flush()
        os._exit(128 + number)


def _noted(number: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing (the wakeup pipe carries the signal to the ``interrupt`` thread).

    A handler must be set, or the signal's default action (ending the process) would run instead."""


def _stderr(line: str) -> None:
    print(f"digest: {line}", file=sys.stderr, flush=True)
