"""Ctrl-C and SIGTERM as a request to stop, not a crash: the first asks, a second (or the grace running out) ends.

``Interrupt`` is used as a context manager around a run (``digest send``,
``digest run --once``, the daemon). While it is active the first SIGINT or
SIGTERM only sets ``requested``: the run stops handing out new work, lets what
is on the wire finish and records every outcome. A second signal, or
``grace_s`` seconds without the run having ended, ends the process at once with
128 + the signal's number; rows still on the wire then are the crash case
(sent again next time, with the same Message-ID).
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

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for number, handler in self._previous.items():
            signal.signal(number, handler)

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
        """What the first signal does (also callable directly, e.g. by a test or another thread)."""
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

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.request(number)

    def _now(self, number: int, why: str) -> None:
        self._say(f"{signal.Signals(number).name}: {why}; messages still on the wire are sent again next time")
        sys.stderr.flush()
        os._exit(128 + number)


def _stderr(line: str) -> None:
    print(f"digest: {line}", file=sys.stderr, flush=True)
