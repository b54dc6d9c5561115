"""The daemon's event log: one line per event, as text (``2026-11-23T07:30:00Z ingested file=…``)
or as one JSON object, and the clock it stamps them with."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class EventLog:
    """One line per event: ``2026-11-23T07:30:00Z ingested file=… papers=75 new=63`` or one JSON object."""

    def __init__(self, *, fmt: str = "plain", stream: TextIO | None = None, clock: Clock = utc_now) -> None:
        self._fmt = fmt
        self._stream = stream  # None: sys.stderr as it is at each line (a progress bar may be drawing on it)
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self._fmt == "json":
            line = json.dumps({"ts": stamp, "event": event, **fields}, ensure_ascii=False, default=str)
        else:
            parts = [f"{k}={_plain(v)}" for k, v in fields.items() if v is not None]
            line = " ".join([stamp, event, *parts])
        with self._lock:
            print(line, file=self._stream or sys.stderr, flush=True)


class Lines(logging.Handler):
    """The lines other rooms log (the store's upgrade line), as events of this log: the daemon's output
    stays one format, plain or JSON."""

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        self._log(getattr(record, "event", record.name), detail=record.getMessage())


def said_by(logger: str, log: EventLog) -> None:
    """From now on, what ``logger`` says goes to ``log`` (and only there)."""
    found = logging.getLogger(logger)
    found.handlers = [Lines(log)]
    found.propagate = False


def _plain(value: object) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text
