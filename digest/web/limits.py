"""Request limits: attempts per key (a client address, an email address) in a sliding hour."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

_KEYS_KEPT = 50_000


class RateLimit:
    """At most ``per_hour`` attempts per key (a client address, an email address) in any hour."""

    def __init__(self, per_hour: int, *, clock: Callable[[], datetime]) -> None:
        self._limit = per_hour
        self._clock = clock
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()  # handlers run in several threads

    def allow(self, *keys: str) -> bool:
        """Count one attempt for each key; False (and nothing counted) when any key is over its limit."""
        now = self._clock()
        with self._lock:
            recent = [self._recent(key, now) for key in keys]
            if any(len(times) >= self._limit for times in recent):
                return False
            for times in recent:
                times.append(now)
            if len(self._seen) > _KEYS_KEPT:  # many keys (a flood of addresses): forget those with no recent try
                self._seen = {key: times for key, times in self._seen.items() if self._recent(key, now)}
            return True

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= timedelta(hours=1):
            times.popleft()
        return times
